"""ORM access for videos. The only module of the app that uses `.objects`."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from domains.videos.models import Video

DETAIL_FIELDS = (
    "tenant",
    "video_id",
    "session_id",
    "status",
    "file_key",
    "filename",
    "content_type",
    "size",
    "encode_job_id",
    "hls_path",
    "duration",
    "error",
    "attempt",
    "created_by_id",
    "created_at",
    "updated_at",
)


def video_for_detail(tenant_id: int, *, video_id: uuid.UUID) -> Video | None:
    return Video.objects.filter(tenant_id=tenant_id, video_id=video_id).only(*DETAIL_FIELDS).first()


def video_insert(
    tenant_id: int,
    *,
    video_id: uuid.UUID,
    session_id: int,
    file_key: str,
    filename: str,
    content_type: str,
    size: int,
    created_by_id: int,
) -> Video:
    return Video.objects.create(
        tenant_id=tenant_id,
        video_id=video_id,
        session_id=session_id,
        file_key=file_key,
        filename=filename,
        content_type=content_type,
        size=size,
        created_by_id=created_by_id,
    )


def video_lock(tenant_id: int, *, video_id: uuid.UUID) -> Video | None:
    """Lock the row until the surrounding transaction ends (call inside ``atomic``)."""
    return (
        Video.objects.select_for_update()
        .filter(tenant_id=tenant_id, video_id=video_id)
        .only(*DETAIL_FIELDS)
        .first()
    )


def video_save(tenant_id: int, *, video: Video, fields: list[str]) -> None:
    """Write the named fields of a row read (and locked) through this module."""
    if video.tenant_id != tenant_id:
        raise ValueError("the video belongs to another tenant")
    video.save(update_fields=[*fields, "updated_at"])


def videos_of_tenant(
    tenant_id: int,
    *,
    created_by_id: int | None = None,
    session_id: int | None = None,
    status: str | None = None,
) -> QuerySet[Video]:
    """The tenant's videos, optionally one user's, one session's or one status's."""
    videos = Video.objects.filter(tenant_id=tenant_id).only(*DETAIL_FIELDS)
    if created_by_id is not None:
        videos = videos.filter(created_by_id=created_by_id)
    if session_id is not None:
        videos = videos.filter(session_id=session_id)
    if status:
        videos = videos.filter(status=status)
    return videos
