"""Rebuild a topic's state from its database record, when Redis lost it or went back in time.

Redis is bounded and may forget (eviction, a restart without the last writes, a flush) or
come back older than it was (a failover to a lagging replica, a restart from a stale dump).
The database record stands, so whoever notices rebuilds the state from it at seq 1 of a new
epoch (PROTOCOL.md §2): the detail endpoints, a worker, and the resync sweep for watched
topics (ARCHITECTURE.md, "When Redis forgets or refuses").

The push core knows no business model: each app that owns a topic kind registers, in its
``AppConfig.ready``, a hook that reads its record and answers the topic's whole state as a
:class:`~realtime.state.Change` (or None when the tenant has no such record). The hook gets
the tenant first, like every repository call, and must filter by it: a tenant never gets
another tenant's rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from channels.db import database_sync_to_async

from realtime import store
from realtime.keys import Topic, TopicKind
from realtime.state import NO_POSITION, Change, Position, PublishResult

logger = logging.getLogger(__name__)

# (tenant_id, topic) -> the topic's whole state from its record, or None when there is none.
RecordState = Callable[[int, Topic], Change | None]

_hooks: dict[TopicKind, RecordState] = {}


def register(kind: TopicKind, hook: RecordState) -> None:
    """The app owning ``kind`` answers for its records (called from ``AppConfig.ready``)."""
    _hooks[kind] = hook


def registered(kind: TopicKind) -> RecordState | None:
    return _hooks.get(kind)


def record_state(tenant_id: int, topic: Topic) -> Change | None:
    """The topic's whole state as its record says, or None (no hook, or no such record)."""
    hook = _hooks.get(topic.kind)
    if hook is None:
        return None
    change = hook(tenant_id, topic)
    if change is not None and change.status is None:
        raise ValueError(f"the {topic.kind.value} rebuild hook answered a change without status")
    return change


def rebuild_topic(
    tenant_id: int, topic: Topic, *, known: Position = NO_POSITION
) -> PublishResult | None:
    """Rebuild the topic from its record unless Redis holds a state at or above ``known``.

    ``known``: the highest (epoch, seq) the caller has seen (``NO_POSITION``: only a missing
    hash is rebuilt). None when there is no record to rebuild from. Raises
    ``RealtimeUnavailable`` when Redis cannot be reached.
    """
    change = record_state(tenant_id, topic)
    if change is None:
        return None
    result = store.rebuild(tenant_id, topic, change, known=known)
    if result.accepted:
        logger.info(
            "state rebuilt from the record tenant=%s topic=%s epoch=%s status=%s",
            tenant_id,
            topic,
            result.epoch,
            change.status,
        )
    return result


async def arebuild_topic(
    tenant_id: int, topic: Topic, *, known: Position = NO_POSITION
) -> PublishResult | None:
    """:func:`rebuild_topic` from async code: the record is read on a database thread."""
    return await database_sync_to_async(rebuild_topic)(tenant_id, topic, known=known)


def publish_rebuilding(tenant_id: int, topic: Topic, change: Change) -> PublishResult:
    """``store.publish``, except that a progress-only change finding no state rebuilds first.

    A worker's progress on a topic Redis forgot would be refused (``not_found``) until the
    next status change; instead the state is rebuilt from the record and the progress applied
    on top of it. Used by the worker's progress throttle.
    """
    result = store.publish(tenant_id, topic, change)
    if result.accepted or result.reason != "not_found":
        return result
    if rebuild_topic(tenant_id, topic) is None:
        return result
    return store.publish(tenant_id, topic, change)
