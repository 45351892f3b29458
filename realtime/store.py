"""The Redis store of live state: apply a change and publish it in one round trip.

``publish`` (sync: workers, views, commands) and ``apublish`` (async) run ``lua/state.lua`` by
EVALSHA on the process's persistent Redis client; the script is sent to Redis once per client
and again only if Redis lost it (``NOSCRIPT`` after a restart or ``SCRIPT FLUSH``: redis-py's
``Script`` loads it and retries once). ``snapshot``/``asnapshot`` read a topic's document in one
round trip as well; ``asnapshot`` (the progress endpoints, the WebSocket subscribe) runs over
the loop's one pipelined connection (``realtime.multiplex``), ``EVAL`` after a ``NOSCRIPT``.

Every Redis error that means "Redis cannot serve this now" is :class:`RealtimeUnavailable` above
this module, whatever its class in redis-py: connection errors and timeouts, but also ``OOM``
(maxmemory reached), ``READONLY`` (a demoted primary after a failover), ``BUSY`` (a script
running too long), ``LOADING``, ``MASTERDOWN``, ``MISCONF`` and a ``NOSCRIPT`` that survived
the reload. Anything else (a bad argument, an error inside the script) is a bug and raises.

Services publish after their transaction commits, through :func:`publish_on_commit` and
nothing else, never from ``save()``, signals or views (STYLE.md §3); read repair (a topic
Redis lost, or a lost terminal state) is :func:`repair_from_record`, and :func:`rebuild`
recreates a topic from its record (through ``realtime.rebuild``, which knows the records).
Outside this package only the worker's republisher calls :func:`publish` directly, as there
is no transaction to wait for on that path (tests/unit/test_publish_discipline.py holds
everyone to this).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import redis
import redis.asyncio as aredis
from django.conf import settings
from django.db import transaction
from redis.commands.core import AsyncScript, Script

from realtime.clients import async_multiplexer, async_redis, sync_redis
from realtime.keys import Feed, KeySpace, Topic
from realtime.resp import pack
from realtime.state import (
    NO_POSITION,
    RESULT_MAX_BYTES,
    Change,
    Position,
    PublishResult,
    Snapshot,
    is_terminal,
)

logger = logging.getLogger(__name__)

SCRIPT_SOURCE = (Path(__file__).parent / "lua" / "state.lua").read_text()
SCRIPT_SHA = hashlib.sha1(SCRIPT_SOURCE.encode()).hexdigest()  # noqa: S324 - Redis' script id
# ConnectionError covers redis-py's LOADING (BusyLoadingError) and authentication errors.
REDIS_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.NoScriptError,
    redis.exceptions.ClusterDownError,  # and MasterDownError
    redis.exceptions.TryAgainError,
)
# Replies redis-py has no class for: the first word of the error text.
UNAVAILABLE_REPLIES = frozenset({"BUSY", "MISCONF", "NOREPLICAS", "MASTERDOWN", "LOADING"})
_REPLY_CODE = re.compile(r"(?:^|caused error: \(['\"])([A-Z]+)\b")


class RealtimeUnavailable(Exception):
    """Redis could not serve the call (down, unreachable, full, read-only, busy); the change
    was not applied."""


def is_unavailable(exc: redis.RedisError) -> bool:
    """Whether a Redis error means "not now" rather than "wrong request"."""
    if isinstance(exc, REDIS_ERRORS):
        return True
    if not isinstance(exc, redis.ResponseError):
        return False
    # A pipeline annotates the reply: "Command # 1 (HGET …) of pipeline caused error: ('BUSY …',)"
    match = _REPLY_CODE.search(str(exc))
    return match is not None and match[1] in UNAVAILABLE_REPLIES


@contextlib.contextmanager
def _unavailable_as_one_error() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        if not is_unavailable(exc):
            raise
        raise RealtimeUnavailable(f"{type(exc).__name__}: {exc}") from exc


# Called with a change that could not be published after the commit (Redis down), to retry it
# later (the worker's republisher).
PublishRetry = Callable[[int, Topic, Change], None]


@cache
def keyspace() -> KeySpace:
    layers: dict[str, Any] = settings.CHANNEL_LAYERS
    layer_prefix = layers["default"]["CONFIG"].get("prefix", "asgi")
    return KeySpace(prefix=settings.REALTIME_KEY_PREFIX, layer_prefix=layer_prefix)


def _apply_args(
    tenant_id: int, topic: Topic, change: Change, *, op: str = "apply"
) -> tuple[list[str], list[Any]]:
    change.validate(topic.kind)
    space = keyspace()
    keys = [space.status_key(tenant_id, topic), space.progress_key(tenant_id, topic)]
    args = [
        op,
        topic.kind.value,
        str(topic),
        space.group_channel(tenant_id, topic),
        settings.REALTIME_RUNNING_TTL,
        settings.REALTIME_TERMINAL_TTL,
        RESULT_MAX_BYTES,
        change.encode(),
        space.feed_channel(tenant_id, Feed.of(topic.kind)),
    ]
    return keys, args


def _read_args(tenant_id: int, topic: Topic, *, frame: bool = True) -> tuple[list[str], list[Any]]:
    space = keyspace()
    keys = [space.status_key(tenant_id, topic), space.progress_key(tenant_id, topic)]
    return keys, ["read" if frame else "read_document", topic.kind.value, str(topic)]


def _rebuild_args(
    tenant_id: int, topic: Topic, change: Change, known: Position
) -> tuple[list[str], list[Any]]:
    if change.status is None:
        raise ValueError("a rebuild needs the whole state, status included")
    keys, args = _apply_args(tenant_id, topic, change, op="rebuild")
    epoch, seq = known
    return keys, [*args, int(epoch), int(seq)]


def _publish_result(reply: Sequence[Any]) -> PublishResult:
    accepted, reason, frame, seq, epoch = reply
    return PublishResult(
        accepted=bool(accepted),
        reason=_text(reason),
        seq=int(seq),
        frame=_text(frame) if frame else None,
        epoch=int(epoch),
    )


def _snapshot(topic: Topic, reply: Sequence[Any] | None) -> Snapshot | None:
    if not reply:
        return None
    document, frame, seq, status, owner, epoch = reply
    owner_text = _text(owner)
    return Snapshot(
        topic=topic,
        seq=int(seq),
        status=_text(status),
        owner_id=int(owner_text) if owner_text else None,
        document=_text(document),
        frame=_text(frame) if frame is not None else "",
        epoch=int(epoch),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- sync -----------------------------------------------------------------------------------
_sync_scripts: dict[int, Script] = {}


def _sync_script() -> Script:
    client = sync_redis()
    script = _sync_scripts.get(id(client))
    if script is None:
        script = _sync_scripts[id(client)] = client.register_script(SCRIPT_SOURCE)
    return script


def publish(tenant_id: int, topic: Topic, change: Change) -> PublishResult:
    """Apply ``change`` to the topic's state and publish the new state if it was accepted."""
    keys, args = _apply_args(tenant_id, topic, change)
    with _unavailable_as_one_error():
        result = _publish_result(_sync_script()(keys=keys, args=args))
    _log(tenant_id, topic, change, result)
    return result


def publish_on_commit(
    tenant_id: int,
    topic: Topic,
    change: Change,
    *,
    on_failure: PublishRetry | None = None,
    on_success: Callable[[PublishResult], None] | None = None,
) -> None:
    """Publish once the current transaction commits; a Redis outage is logged, not raised.

    The database is the record: a Redis outage never undoes its write. A lost publish is
    repaired by the next accepted change, by ``on_failure`` (the worker's republisher retries
    terminal changes from the record), by the outbox relay (``on_success`` records on the job
    row that Redis answered; docs/adr/0011-the-job-row-is-the-outbox.md), by read repair and
    by consumers' resynchronisation. Outside a transaction (autocommit) it publishes at once.
    """

    def _publish() -> None:
        try:
            result = publish(tenant_id, topic, change)
        except RealtimeUnavailable as exc:
            logger.warning(
                "publish after commit failed, Redis unavailable tenant=%s topic=%s status=%s: %s",
                tenant_id,
                topic,
                change.status,
                exc,
            )
            if on_failure is not None:
                on_failure(tenant_id, topic, change)
            return
        except Exception:
            # Never raise after the commit: later hooks (the SQS send) must still run.
            logger.exception("publish after commit failed tenant=%s topic=%s", tenant_id, topic)
            return
        if on_success is not None:
            on_success(result)

    transaction.on_commit(_publish)


def rebuild(
    tenant_id: int, topic: Topic, change: Change, *, known: Position = NO_POSITION
) -> PublishResult:
    """(Re)create the topic's state from ``change``, the whole state built from its record.

    At seq 1 of a new epoch above ``known`` (the highest (epoch, seq) the caller has seen, and
    above the stored one), when the hash is missing or its (epoch, seq) is below ``known``;
    otherwise nothing changes (reason ``current``). See ``lua/state.lua``.
    """
    keys, args = _rebuild_args(tenant_id, topic, change, known)
    with _unavailable_as_one_error():
        result = _publish_result(_sync_script()(keys=keys, args=args))
    _log(tenant_id, topic, change, result)
    return result


def repair_from_record(tenant_id: int, topic: Topic, change: Callable[[], Change]) -> bool:
    """Make Redis agree with a record a caller just read; True when something was published.

    Read repair: a topic Redis no longer holds is rebuilt from ``change()`` (a new epoch,
    terminal states included), and a terminal ``change()`` is published if Redis still shows
    the topic running (a terminal publish lost while Redis was away). A topic Redis holds and
    that agrees is left alone; ``change`` is only built when needed. A Redis outage answers
    False.
    """
    try:
        snap = snapshot(tenant_id, topic)
        if snap is None:
            return rebuild(tenant_id, topic, change()).accepted
        if is_terminal(snap.status):
            return False
        wanted = change()
        if not is_terminal(wanted.status):
            return False
        return publish(tenant_id, topic, wanted).accepted
    except RealtimeUnavailable:
        return False


def restore_terminal(tenant_id: int, topic: Topic, change: Callable[[], Change]) -> bool:
    """Replace a running state Redis shows for a finished job's topic; True when replaced.

    For a Redis that went back in time (:func:`rewind_check`): a terminal state recorded as
    published may be missing from the dataset Redis came back with, which shows the topic as
    it was before (PROCESSING). ``change()`` (the record's terminal state) is only built when
    Redis shows a running state; it is rebuilt at a new epoch claimed just above the stored
    position, so every client takes it (and had it already moved on meanwhile, nothing
    changes). A missing or terminal topic is left alone: a missing one answers ``not_found``
    and the client reads the record. Raises :class:`RealtimeUnavailable`.
    """
    snap = snapshot(tenant_id, topic)
    if snap is None or is_terminal(snap.status):
        return False
    wanted = change()
    if not is_terminal(wanted.status):
        return False
    return rebuild(tenant_id, topic, wanted, known=(snap.epoch, snap.seq + 1)).accepted


def snapshot(tenant_id: int, topic: Topic) -> Snapshot | None:
    keys, args = _read_args(tenant_id, topic)
    with _unavailable_as_one_error():
        return _snapshot(topic, _sync_script()(keys=keys, args=args))


def cancel_requests_many(pairs: Sequence[tuple[int, Topic]]) -> list[bool]:
    """Whether each (tenant, topic)'s state records a cancel request, in one pipelined trip.

    The worker's supervisor reads its running jobs this way (PROTOCOL.md §2); a topic Redis
    does not hold reads False (the database's flag, read at each heartbeat, covers it).
    """
    if not pairs:
        return []
    space = keyspace()
    with _unavailable_as_one_error(), sync_redis().pipeline(transaction=False) as pipe:
        for tenant_id, topic in pairs:
            pipe.hget(space.status_key(tenant_id, topic), "cancel_requested")
        replies = pipe.execute()
    return [_text(reply) == "1" if reply is not None else False for reply in replies]


# --- has Redis gone back in time? -----------------------------------------------------------
CHECKPOINT_SOURCE = (Path(__file__).parent / "lua" / "checkpoint.lua").read_text()
_checkpoint_scripts: dict[int, Script] = {}


@dataclass(frozen=True, slots=True)
class Rewind:
    """Redis serves a dataset another server wrote (a restart from a dump, a promoted replica):
    writes after ``since_ms`` (Redis clock, ms since the epoch) may be missing from it."""

    since_ms: int


def _checkpoint(op: str) -> list[Any]:
    client = sync_redis()
    script = _checkpoint_scripts.get(id(client))
    if script is None:
        script = _checkpoint_scripts[id(client)] = client.register_script(CHECKPOINT_SOURCE)
    with _unavailable_as_one_error():
        return list(script(keys=[keyspace().checkpoint_key()], args=[op]))


def rewind_check() -> Rewind | None:
    """A :class:`Rewind` when the server now answering did not write the checkpoint; else
    None, and the checkpoint now says this server, now (``lua/checkpoint.lua``). A rewind is
    reported again at every check until :func:`rewind_repaired`. Raises
    :class:`RealtimeUnavailable`."""
    verdict, at = _checkpoint("check")
    if _text(verdict) != "rewound":
        return None
    return Rewind(since_ms=int(_text(at)))


def rewind_repaired() -> None:
    """What a rewind may have lost is republished: the checkpoint now says this server, now."""
    _checkpoint("mark")


# --- async ----------------------------------------------------------------------------------
_async_scripts: dict[int, AsyncScript] = {}


def _async_script() -> AsyncScript:
    client = async_redis()
    script = _async_scripts.get(id(client))
    if script is None:
        script = _async_scripts[id(client)] = client.register_script(SCRIPT_SOURCE)
    return script


async def apublish(tenant_id: int, topic: Topic, change: Change) -> PublishResult:
    keys, args = _apply_args(tenant_id, topic, change)
    with _unavailable_as_one_error():
        result = _publish_result(await _async_script()(keys=keys, args=args))
    _log(tenant_id, topic, change, result)
    return result


# HMGET <status key> doc seq status owner_id epoch, in RESP around the key (the hot read).
_HMGET_HEAD, _HMGET_FIELDS = pack("HMGET", "", "doc", "seq", "status", "owner_id", "epoch").split(
    b"$0\r\n\r\n"
)
_HMGET_HEAD += b"$"


async def asnapshot(tenant_id: int, topic: Topic, *, frame: bool = True) -> Snapshot | None:
    """The topic's snapshot, over this loop's pipelined connection (realtime/multiplex.py):
    the progress endpoints' one read, and the WebSocket subscribe's. ``frame=False`` (the
    progress endpoints): without the WebSocket frame (``Snapshot.frame`` is ""), read as the
    document stored in the status hash by one HMGET."""
    multiplexer = async_multiplexer()
    if multiplexer is None:  # a URL the multiplexer does not speak
        keys, args = _read_args(tenant_id, topic, frame=frame)
        with _unavailable_as_one_error():
            return _snapshot(topic, await _async_script()(keys=keys, args=args))
    with _unavailable_as_one_error():
        if not frame:
            # The document the last accepted change stored in the hash (lua/state.lua), with
            # what the caller checks, in one HMGET: no script runs.
            key = keyspace().status_key(tenant_id, topic).encode()
            document, seq, status, owner, epoch = await multiplexer.execute(
                b"%s%d\r\n%s\r\n%s" % (_HMGET_HEAD, len(key), key, _HMGET_FIELDS)
            )
            if seq is None:
                return None
            if document is not None:
                return _snapshot(topic, (document, None, seq, status, owner, epoch or 0))
            # A hash from before the document was stored: the script builds it.
        keys, args = _read_args(tenant_id, topic, frame=frame)
        try:
            reply = await multiplexer.execute(pack("EVALSHA", SCRIPT_SHA, 2, *keys, *args))
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            # A Redis that restarted or was flushed: EVAL loads the script again.
            reply = await multiplexer.execute(pack("EVAL", SCRIPT_SOURCE, 2, *keys, *args))
    return _snapshot(topic, reply)


class ProgressRead(NamedTuple):
    """What the progress endpoints need of a topic: the stored document as it will be served
    (bytes, never decoded), and what the caller's checks read."""

    document: bytes
    status: bytes
    owner_id: int | None


# HMGET <status key> doc seq status owner_id, in RESP around the key.
_PROGRESS_HEAD, _PROGRESS_FIELDS = pack("HMGET", "", "doc", "seq", "status", "owner_id").split(
    b"$0\r\n\r\n"
)
_PROGRESS_HEAD += b"$"


async def aprogress(tenant_id: int, topic: Topic) -> ProgressRead | None:
    """The progress endpoints' read: one HMGET on this loop's pipelined connection, awaited
    as the multiplexer's future itself (no coroutine between). None if the topic is unknown."""
    multiplexer = async_multiplexer()
    if multiplexer is not None:
        key = keyspace().status_key(tenant_id, topic).encode()
        try:
            document, seq, status, owner = await multiplexer.submit(
                b"%s%d\r\n%s\r\n%s" % (_PROGRESS_HEAD, len(key), key, _PROGRESS_FIELDS)
            )
        except redis.RedisError as exc:
            if not is_unavailable(exc):
                raise
            raise RealtimeUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if seq is None:
            return None
        if document is not None:
            return ProgressRead(document, status, int(owner) if owner else None)
    # No multiplexer for the URL, or a hash from before the document was stored: the script
    # builds the document.
    snap = await asnapshot(tenant_id, topic, frame=False)
    if snap is None:
        return None
    return ProgressRead(snap.document.encode(), snap.status.encode(), snap.owner_id)


async def arebuild(
    tenant_id: int, topic: Topic, change: Change, *, known: Position = NO_POSITION
) -> PublishResult:
    keys, args = _rebuild_args(tenant_id, topic, change, known)
    with _unavailable_as_one_error():
        result = _publish_result(await _async_script()(keys=keys, args=args))
    _log(tenant_id, topic, change, result)
    return result


async def apositions_many(pairs: Sequence[tuple[int, Topic]]) -> list[Position | None]:
    """The stored (epoch, seq) of each (tenant, topic) (None where the hash does not exist), in
    one pipelined trip. The process-wide resync sweep reads every watched topic of every
    connection this way. A hash from before epochs existed reads epoch 0.
    """
    if not pairs:
        return []
    space = keyspace()
    client: aredis.Redis = async_redis()
    with _unavailable_as_one_error():
        async with client.pipeline(transaction=False) as pipe:
            for tenant_id, topic in pairs:
                pipe.hmget(space.status_key(tenant_id, topic), "epoch", "seq")
            replies = await pipe.execute()
    return [(int(epoch or 0), int(seq)) if seq is not None else None for epoch, seq in replies]


def _log(tenant_id: int, topic: Topic, change: Change, result: PublishResult) -> None:
    if result.accepted:
        logger.debug(
            "published tenant=%s topic=%s seq=%s status=%s",
            tenant_id,
            topic,
            result.seq,
            change.status,
        )
    else:
        logger.info(
            "change ignored tenant=%s topic=%s reason=%s seq=%s",
            tenant_id,
            topic,
            result.reason,
            result.seq,
        )
