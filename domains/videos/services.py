from __future__ import annotations

import uuid

from domains.common.errors import NotFound
from domains.videos import repository
from domains.videos.models import Video
from realtime.identity import Caller, sees_topic


def video_get_for_caller(tenant_id: int, *, video_id: uuid.UUID, caller: Caller) -> Video:
    """The video record if the caller may see it; otherwise NotFound, as if it did not exist."""
    video = repository.video_for_detail(tenant_id, video_id=video_id)
    if video is None or not sees_topic(caller, owner_id=video.created_by_id):
        raise NotFound()
    return video
