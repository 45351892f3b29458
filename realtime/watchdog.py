"""Detect that the channel layer lost messages, and make every consumer resynchronise.

``RedisPubSubChannelLayer`` silently drops whatever is published while its subscriber
connection is down, and it has no reconnect hook (channels_redis#406). So each server process
sends itself numbered heartbeats *through the layer*, once per ``interval``. A gap in the
numbers it receives means the layer lost messages, and every consumer of the process re-reads
its topics at once. This catches outages longer than the interval (a Redis restart or
failover). A blip shorter than that (the subscriber reconnects within ~0.1 s) may lose a
publish without losing a beat: the periodic sweep repairs those.

The sweep is one task per process, not one per connection: every
``REALTIME_RESYNC_INTERVAL`` seconds (and at once after a gap) it reads the stored
``(epoch, seq)`` of every topic every connection watches, in pipelined batches across tenants,
sends the state of those that moved ahead, and closes connections whose client stopped reading.
A topic whose hash vanished (eviction, flush, expiry) or regressed below what a connection sent
(a restart from a stale dump, a failover to a lagging replica) is rebuilt from its database
record through ``realtime.rebuild``, once per topic and sweep, at a new epoch above the highest
position any of its watchers sent; every watcher then gets the rebuilt state. Per-connection
timers and loops cost memory and wake-ups on every idle socket; with thousands of connections
per process that was most of the idle CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from realtime import metrics, rebuild, store
from realtime.keys import Topic
from realtime.state import Position
from realtime.store import RealtimeUnavailable

logger = logging.getLogger(__name__)

# Topics read per pipelined round trip during a sweep.
SWEEP_BATCH = 500
# Sweeps asked for early (a lost layer message, a regression seen on subscribe) start at most
# this often, so that no client can make the process sweep back to back.
MIN_SWEEP_GAP = 1.0

_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LayerWatchdog] = (
    weakref.WeakKeyDictionary()
)
_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Sweeper] = (
    weakref.WeakKeyDictionary()
)


class Watched(Protocol):
    """What the sweep needs of a connection (``RealtimeConsumer`` implements it)."""

    tenant_id: int

    def watched(self) -> Iterable[tuple[Topic, Position]]:
        """(topic, (epoch, seq) already sent) of each live, non-terminal subscription."""
        ...

    def stalled(self, now: float) -> bool: ...

    def close_stalled(self) -> None:
        """Start closing the connection (its client stopped reading); returns at once."""
        ...

    async def repair(self, topic: Topic) -> bool:
        """Read the topic's state and send it if it moved; True when something was sent."""
        ...


# The watchdog's first subscription retries at most this far apart while the layer's Redis
# cannot be reached (a process started during an outage or under an overloaded Redis).
JOIN_RETRY_MAX = 5.0


class LayerWatchdog:
    def __init__(self, interval: float = 0.1, *, layer: Any = None) -> None:
        self.interval = interval
        self.listeners: weakref.WeakSet[Any] = weakref.WeakSet()
        self.gaps = 0
        self.beats = 0  # beats received, for tests and the log
        self._layer = layer
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="layer-watchdog")
            self._task.add_done_callback(_log_crash)

    def _notify(self) -> None:
        self.gaps += 1
        metrics.LAYER_GAPS.inc()
        listeners = list(self.listeners)
        logger.warning(
            "channel layer lost messages; resynchronising %s connection(s)", len(listeners)
        )
        for listener in listeners:
            listener.request_resync()

    async def _run(self) -> None:
        layer = self._layer if self._layer is not None else get_channel_layer()
        group = f"realtime.watchdog.{uuid.uuid4().hex}"
        channel = await self._join(layer, group)
        receiver = asyncio.create_task(self._receive(layer, channel))
        try:
            beat = 0
            while True:
                beat += 1
                with contextlib.suppress(Exception):  # a failed beat shows up as a gap
                    await layer.group_send(group, {"type": "watchdog.beat", "n": beat})
                await asyncio.sleep(self.interval)
        finally:
            receiver.cancel()

    async def _join(self, layer: Any, group: str) -> str:
        """Subscribe the watchdog's channel to its group, retrying with backoff while the
        layer's Redis cannot be reached. Once it succeeds after a failure every listener
        resyncs: whatever was published meanwhile may not have reached a consumer."""
        delay = self.interval
        failures = 0
        while True:
            try:
                channel: str = await layer.new_channel()
                await layer.group_add(group, channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any layer error: wait and try again
                failures += 1
                logger.warning(
                    "layer watchdog cannot subscribe yet (attempt %s), retrying in %.1f s: %s",
                    failures,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, JOIN_RETRY_MAX)
                continue
            if failures:
                logger.info("layer watchdog subscribed after %s failed attempt(s)", failures)
                self._notify()
            return channel

    async def _receive(self, layer: Any, channel: str) -> None:
        last = None
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the layer reconnects by itself; keep listening
                await asyncio.sleep(self.interval)
                continue
            n = int(message.get("n", 0))
            self.beats += 1
            if last is not None and n > last + 1:
                self._notify()
            last = n


class Sweeper:
    """The process-wide resync sweep of every registered connection (see the module doc)."""

    def __init__(self) -> None:
        # A plain set: each connection leaves it on its way out (``unwatch``), which a WeakSet
        # would spare at the cost of a weak reference and its callback per connection.
        self.connections: set[Any] = set()
        self._now = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="realtime-sweeper")
            self._task.add_done_callback(_log_crash)

    def request_resync(self) -> None:
        """The layer lost messages: sweep now instead of at the next interval."""
        self._now.set()

    async def _run(self) -> None:
        failed = False
        last = 0.0
        while True:
            interval = settings.REALTIME_RESYNC_INTERVAL
            delay = 1.0 if failed else interval * random.uniform(0.8, 1.2)  # noqa: S311
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), timeout=delay)
            early = self._now.is_set()
            if early and (wait := last + MIN_SWEEP_GAP - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            self._now.clear()
            last = time.monotonic()
            try:
                await self.sweep()
            except RealtimeUnavailable as exc:
                logger.warning("resync sweep failed, retrying in 1 s: %s", exc)
                failed = True
                continue
            except Exception:  # the sweep must outlive any one bad connection
                logger.exception("resync sweep crashed; next sweep as usual")
            failed = False

    async def sweep(self) -> int:
        """One pass over every connection; returns how many topics were repaired."""
        now = time.monotonic()
        watched: list[tuple[Watched, Topic, Position]] = []
        for connection in list(self.connections):
            if connection.stalled(now):
                connection.close_stalled()
                continue
            watched.extend((connection, topic, sent) for topic, sent in connection.watched())
        repaired = 0
        # (tenant, topic) whose hash vanished or went below what was sent -> the highest
        # position sent, and the connections to repair once it is rebuilt.
        lost: dict[tuple[int, Topic], tuple[Position, list[Watched]]] = {}
        for start in range(0, len(watched), SWEEP_BATCH):
            batch = watched[start : start + SWEEP_BATCH]
            stored = await store.apositions_many(
                [(conn.tenant_id, topic) for conn, topic, _ in batch]
            )
            for (connection, topic, sent), position in zip(batch, stored, strict=True):
                if position is None or position < sent:
                    known, waiting = lost.get((connection.tenant_id, topic), (sent, []))
                    waiting.append(connection)
                    lost[(connection.tenant_id, topic)] = (max(known, sent), waiting)
                elif position > sent and await connection.repair(topic):
                    repaired += 1
                    metrics.REPAIRED_BEHIND.inc()
        for (tenant_id, topic), (known, waiting) in lost.items():
            if not await self._rebuild(tenant_id, topic, known):
                continue
            for connection in waiting:
                if await connection.repair(topic):
                    repaired += 1
                    metrics.REPAIRED_REBUILT.inc()
        if repaired:
            logger.info("resync repaired %s topic(s) over %s watched", repaired, len(watched))
        return repaired

    async def _rebuild(self, tenant_id: int, topic: Topic, known: Position) -> bool:
        """Rebuild a lost or regressed topic from its record; True when Redis now holds it."""
        try:
            result = await rebuild.arebuild_topic(tenant_id, topic, known=known)
        except Exception as exc:  # a broken record or database must not stop the sweep
            if isinstance(exc, RealtimeUnavailable):
                raise
            logger.exception("rebuild failed tenant=%s topic=%s", tenant_id, topic)
            return False
        return result is not None


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s stopped", task.get_name(), exc_info=task.exception())


def request_repair(connection: Watched) -> None:
    """A connection saw Redis below what its client holds: sweep soon rather than at the
    next interval (at most once per ``MIN_SWEEP_GAP``)."""
    sweeper = _sweepers.get(asyncio.get_running_loop())
    if sweeper is not None and connection in sweeper.connections:
        sweeper.request_resync()


def watch(connection: Watched, *, factory: Callable[[], LayerWatchdog] = LayerWatchdog) -> Sweeper:
    """Register a connection with this loop's sweep (starting it and the watchdog if needed)."""
    loop = asyncio.get_running_loop()
    sweeper = _sweepers.get(loop)
    if sweeper is None:
        sweeper = _sweepers[loop] = Sweeper()
        watchdog = _watchdogs[loop] = factory()
        watchdog.listeners.add(sweeper)
        watchdog.start()
        sweeper.start()
    sweeper.connections.add(connection)
    return sweeper


def unwatch(connection: Watched) -> None:
    """Take a closing connection out of this loop's sweep (every way out calls it)."""
    sweeper = _sweepers.get(asyncio.get_running_loop())
    if sweeper is not None:
        sweeper.connections.discard(connection)
