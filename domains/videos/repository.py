"""ORM access for videos. The only module of the app that uses `.objects`."""

from __future__ import annotations

import uuid

from domains.videos.models import Video

DETAIL_FIELDS = (
    "video_id",
    "session_id",
    "status",
    "attempt",
    "hls_path",
    "duration",
    "error",
    "created_by_id",
    "created_at",
    "updated_at",
)


def video_for_detail(tenant_id: int, *, video_id: uuid.UUID) -> Video | None:
    return Video.objects.filter(tenant_id=tenant_id, video_id=video_id).only(*DETAIL_FIELDS).first()
