"""ORM access for videos. The only module of the app that uses `.objects`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from domains.common.cursors import Cursor
from domains.common.keyset import newest_first, with_statuses
from domains.videos.models import Video, VideoStatus

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
    "cancel_requested",
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


def video_id_for_encode_job(tenant_id: int, *, job_id: uuid.UUID) -> uuid.UUID | None:
    """The video whose encode job is ``job_id``, if the tenant has one."""
    value = (
        Video.objects.filter(tenant_id=tenant_id, encode_job_id=job_id)
        .values_list("video_id", flat=True)
        .first()
    )
    return None if value is None else uuid.UUID(str(value))


def video_save(tenant_id: int, *, video: Video, fields: list[str]) -> None:
    """Write the named fields of a row read (and locked) through this module."""
    if video.tenant_id != tenant_id:
        raise ValueError("the video belongs to another tenant")
    video.save(update_fields=[*fields, "updated_at"])


# --- the list (GET /media/videos/) ----------------------------------------------------------
# What a list row shows, and its key: never the file key, the error or the lease.
LIST_FIELDS = ("id", "video_id", "session_id", "status", "created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class VideoListRow:
    id: int
    video_id: uuid.UUID
    session_id: int
    status: str
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> Cursor:
        return Cursor(created_at=self.created_at, id=self.id)


def videos_page_query(
    tenant_id: int,
    *,
    owner_id: int | None,
    session_id: int | None = None,
    statuses: tuple[str, ...] = (),
    after: Cursor | None = None,
    limit: int,
) -> QuerySet[Video, tuple[Any, ...]]:
    """The tenant's videos, newest first by ``(created_at, id)``, below ``after`` if given
    (``domains/common/keyset.py``); a ``session_id`` filter is served by the seed's
    ``(session_id, status)`` index. Exposed for the EXPLAIN tests.
    """
    videos = Video.objects.filter(tenant_id=tenant_id)
    if owner_id is not None:
        videos = videos.filter(created_by_id=owner_id)
    if session_id is not None:
        videos = videos.filter(session_id=session_id)
    return newest_first(with_statuses(videos, statuses), after).values_list(*LIST_FIELDS)[:limit]


def videos_page(
    tenant_id: int,
    *,
    owner_id: int | None,
    session_id: int | None = None,
    statuses: tuple[str, ...] = (),
    after: Cursor | None = None,
    limit: int,
) -> list[VideoListRow]:
    """At most ``limit`` rows of :func:`videos_page_query`, in one query."""
    query = videos_page_query(
        tenant_id,
        owner_id=owner_id,
        session_id=session_id,
        statuses=statuses,
        after=after,
        limit=limit,
    )
    return [VideoListRow(*values) for values in query]


VIDEO_TERMINAL_STATUSES = (VideoStatus.READY, VideoStatus.FAILED, VideoStatus.CANCELLED)


def videos_finished_since(
    *, since: datetime, after: tuple[datetime, int] | None = None, limit: int
) -> list[Video]:
    """Videos that reached a terminal status at or after ``since`` (their last change, which a
    terminal video has no more of), in (``updated_at``, id) order, the page after ``after``.

    Across tenants: the relay's read after Redis went back in time
    (``services.rewound_videos_restore``), as rare as the jobs' one and, like it, unindexed.
    """
    rows = Video.objects.filter(status__in=VIDEO_TERMINAL_STATUSES, updated_at__gte=since)
    if after is not None:
        changed_at, row_id = after
        rows = rows.filter(Q(updated_at__gt=changed_at) | Q(updated_at=changed_at, id__gt=row_id))
    return list(rows.only(*DETAIL_FIELDS, "id").order_by("updated_at", "id")[:limit])
