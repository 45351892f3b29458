from __future__ import annotations

import uuid

from domains.common.errors import NotFound
from domains.videos import repository
from domains.videos.models import Video
from realtime.identity import Caller, sees_topic
from realtime.keys import Topic
from realtime.records import Record


def video_get_for_caller(tenant_id: int, *, video_id: uuid.UUID, caller: Caller) -> Video:
    """The video record if the caller may see it; otherwise NotFound, as if it did not exist."""
    video = repository.video_for_detail(tenant_id, video_id=video_id)
    if video is None or not sees_topic(caller, owner_id=video.created_by_id):
        raise NotFound()
    return video


def video_record(tenant_id: int, topic: Topic) -> Record | None:
    """The video's recorded status and attempt (for ``publish_state``), or None if absent."""
    row = repository.video_status_attempt(tenant_id, video_id=topic.id)
    return Record(status=row[0], attempt=row[1]) if row is not None else None
