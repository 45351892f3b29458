"""Detect that the channel layer lost messages, and make every consumer resynchronise.

``RedisPubSubChannelLayer`` silently drops whatever is published while its subscriber
connection is down, and it has no reconnect hook (channels_redis#406). So each server process
sends itself numbered heartbeats *through the layer*, once per ``interval``. A gap in the
numbers it receives means the layer lost messages, and every consumer of the process re-reads
its topics at once. This catches outages longer than the interval (a Redis restart or
failover). A blip shorter than that (the subscriber reconnects within ~0.1 s) may lose a
publish without losing a beat: the periodic sweep of each consumer repairs those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LayerWatchdog] = (
    weakref.WeakKeyDictionary()
)


class LayerWatchdog:
    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.listeners: weakref.WeakSet[Any] = weakref.WeakSet()
        self.gaps = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="layer-watchdog")
            self._task.add_done_callback(_log_crash)

    def _notify(self) -> None:
        self.gaps += 1
        listeners = list(self.listeners)
        logger.warning(
            "channel layer lost messages; resynchronising %s connection(s)", len(listeners)
        )
        for listener in listeners:
            listener.request_resync()

    async def _run(self) -> None:
        layer = get_channel_layer()
        group = f"realtime.watchdog.{uuid.uuid4().hex}"
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
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
            if last is not None and n > last + 1:
                self._notify()
            last = n


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("layer watchdog stopped", exc_info=task.exception())


def watch(listener: Any, *, factory: Callable[[], LayerWatchdog] = LayerWatchdog) -> LayerWatchdog:
    """Register a consumer (anything with ``request_resync()``) with this loop's watchdog."""
    loop = asyncio.get_running_loop()
    watchdog = _watchdogs.get(loop)
    if watchdog is None:
        watchdog = _watchdogs[loop] = factory()
        watchdog.start()
    watchdog.listeners.add(listener)
    return watchdog
