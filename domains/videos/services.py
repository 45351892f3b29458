from __future__ import annotations

import uuid

from domains.common.cursors import Cursor, Page, page_cut
from domains.common.errors import NotFound, PermissionDenied
from domains.videos import repository
from domains.videos.models import Video
from realtime.identity import Caller, sees_topic, visible_owner


def video_get_for_caller(tenant_id: int, *, video_id: uuid.UUID, caller: Caller) -> Video:
    """The video record if the caller may see it; otherwise NotFound, as if it did not exist."""
    video = repository.video_for_detail(tenant_id, video_id=video_id)
    if video is None or not sees_topic(caller, owner_id=video.created_by_id):
        raise NotFound()
    return video


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
