from __future__ import annotations

import logging
import uuid

from domains.common.cursors import Cursor, Page, page_cut
from domains.common.errors import NotFound, PermissionDenied
from domains.videos import repository
from domains.videos.models import Video
from realtime import store
from realtime.identity import Caller, sees_topic, visible_owner
from realtime.keys import Topic, TopicKind
from realtime.state import STATUSES, Change

logger = logging.getLogger(__name__)


def video_get_for_caller(tenant_id: int, *, video_id: uuid.UUID, caller: Caller) -> Video:
    """The video record if the caller may see it; otherwise NotFound, as if it did not exist."""
    video = repository.video_for_detail(tenant_id, video_id=video_id)
    if video is None or not sees_topic(caller, owner_id=video.created_by_id):
        raise NotFound()
    return video


def video_state_repair(tenant_id: int, *, video: Video) -> bool:
    """Rebuild the video's live state from the record a caller just read if Redis lost it (or
    publish its terminal state if Redis still shows it running); True when it published."""
    change = _record_change(video)
    if change is None:
        return False
    repaired = store.repair_from_record(tenant_id, Topic.video(video.video_id), lambda: change)
    if repaired:
        logger.info("live state repaired on read tenant=%s video=%s", tenant_id, video.video_id)
    return repaired


def video_state_from_record(tenant_id: int, topic: Topic) -> Change | None:
    """A video topic's whole live state as its record says (the videos' ``realtime.rebuild``
    hook); None when the tenant has no such video, or its status has no live state."""
    video = repository.video_for_detail(tenant_id, video_id=topic.id)
    return None if video is None else _record_change(video)


def _record_change(video: Video) -> Change | None:
    if video.status not in STATUSES[TopicKind.VIDEO]:
        return None  # a status that lives in the database only (waiting for its upload)
    return Change(
        status=video.status,
        attempt=video.attempt,
        owner_id=video.created_by_id,
        error=video.error or None,
        hls_path=video.hls_path or None,
        duration=video.duration,
    )


def videos_list_for_caller(
    tenant_id: int,
    *,
    caller: Caller,
    session_id: int | None = None,
    statuses: tuple[str, ...] = (),
    after: Cursor | None = None,
    size: int,
) -> Page[repository.VideoListRow]:
    """One page of the tenant's videos, newest first: all of them for staff and admin, the
    caller's own for everyone else (the visibility rule of PROTOCOL.md §4, as a filter)."""
    if caller.tenant_id != tenant_id:
        raise PermissionDenied()
    rows = repository.videos_page(
        tenant_id,
        owner_id=visible_owner(caller),
        session_id=session_id,
        statuses=statuses,
        after=after,
        limit=size + 1,
    )
    return page_cut(rows, size=size, key_of=lambda row: row.key)
