"""Open WebSockets per (tenant, user), capped at ``REALTIME_MAX_CONNECTIONS_PER_USER`` (F19).

Each user has a sorted set in Redis (``KeySpace.connections_key``): one member per open
connection, scored with the time it expires. A handshake drops expired members, counts the
rest and adds itself in one script; a closing connection removes itself. A process that dies
without closing (kill -9, a lost host) cannot leak a slot for long: its members expire
``REALTIME_CONNECTION_TTL`` seconds after their last refresh, and live connections are
refreshed by one task per process every third of that, in batches, not a timer per socket.
Times are Redis' own (``TIME``), so hosts need not agree on the clock.

When Redis cannot be reached, a handshake is let through uncounted (logged): the socket then
serves nothing Redis-backed either, and refusing would only turn an outage into reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from dataclasses import dataclass

import redis
from django.conf import settings

from realtime import store
from realtime.clients import async_redis

logger = logging.getLogger(__name__)

REFRESH_BATCH = 500

# KEYS[1]: the user's set. ARGV: member, cap, ttl ms. 1 = added, 0 = at the cap.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
# KEYS: sets; ARGV[1]: ttl ms, then one member per key. Members already gone stay gone (XX).
_REFRESH = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', expires, ARGV[i + 1])
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""


@dataclass(frozen=True, slots=True)
class Slot:
    """A granted connection; ``key`` is None when it was let through uncounted."""

    key: str | None
    member: str


class _Registry:
    """The counted connections of one event loop and the task that keeps them fresh."""

    def __init__(self) -> None:
        self.live: dict[str, str] = {}  # member -> key
        self.task: asyncio.Task[None] | None = None

    def ensure_refresher(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        interval = settings.REALTIME_CONNECTION_TTL / 3
        while self.live:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except redis.RedisError as exc:
                if not store.is_unavailable(exc):
                    raise
                logger.warning("websocket slots not refreshed: Redis unavailable")
        self.task = None

    async def refresh(self) -> None:
        ttl_ms = settings.REALTIME_CONNECTION_TTL * 1000
        entries = list(self.live.items())
        client = async_redis()
        for start in range(0, len(entries), REFRESH_BATCH):
            batch = entries[start : start + REFRESH_BATCH]
            await client.eval(
                _REFRESH,
                len(batch),
                *(key for _member, key in batch),
                ttl_ms,
                *(member for member, _key in batch),
            )


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Registry] = (
    weakref.WeakKeyDictionary()
)


def _registry() -> _Registry:
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = _Registry()
    return registry


async def acquire(tenant_id: int, user_id: int) -> Slot | None:
    """A slot for a new connection of this user, or None when the user is at the cap."""
    key = store.keyspace().connections_key(tenant_id, user_id)
    member = uuid.uuid4().hex
    try:
        added = await async_redis().eval(
            _ACQUIRE,
            1,
            key,
            member,
            settings.REALTIME_MAX_CONNECTIONS_PER_USER,
            settings.REALTIME_CONNECTION_TTL * 1000,
        )
    except redis.RedisError as exc:
        if not store.is_unavailable(exc):
            raise
        logger.warning("websocket slot not counted: Redis unavailable tenant=%s", tenant_id)
        return Slot(None, member)
    if not added:
        logger.info("websocket refused: connection cap tenant=%s user=%s", tenant_id, user_id)
        return None
    registry = _registry()
    registry.live[member] = key
    registry.ensure_refresher()
    return Slot(key, member)


async def release(slot: Slot) -> None:
    """Give a slot back when its connection ends (the TTL covers the case this never runs)."""
    if slot.key is None:
        return
    _registry().live.pop(slot.member, None)
    with contextlib.suppress(redis.RedisError):
        await async_redis().zrem(slot.key, slot.member)


async def open_count(tenant_id: int, user_id: int) -> int:
    """Unexpired connections of a user (operators and tests)."""
    key = store.keyspace().connections_key(tenant_id, user_id)
    client = async_redis()
    now_s, now_us = await client.time()
    now_ms = int(now_s) * 1000 + int(now_us) // 1000
    return int(await client.zcount(key, f"({now_ms}", "+inf"))
