"""A Redis pub/sub subscriber: one raw connection, hiredis' reply reader, whole reads dispatched.

channels-redis reads pub/sub through redis-py: a task per shard calls
``PubSub.get_message(timeout=0.1)`` in a loop, and each call is one message: a timeout context,
a parser read, a dict built, a wake-up of the task (and one every 0.1 s while idle). Under
fan-out that loop was a large share of the server's CPU per delivered frame
(docs/adr/0019-a-pubsub-reader-on-hiredis.md has the figures).

Here an ``asyncio.Protocol`` feeds each socket read to a ``hiredis.Reader`` and hands every
message the read completed to one callback, as a list of ``(channel, data)`` byte pairs, from
the event loop's own read callback: no task, no per-message await, no wake-up while idle.

The subscriber knows which channels it should hold and holds each once. When its connection
drops it reconnects with backoff and subscribes them all again before anything else; what was
published meanwhile is lost, as with any pub/sub client (the layer watchdog notices and the
consumers resynchronise, realtime/watchdog.py). An idle connection is checked with a PING every
``health_check_interval`` seconds, and dropped if the answer does not come within as long.

The URL is read as redis-py reads it (``realtime.resp.Endpoint``): ``redis://``, ``rediss://``
(TLS with redis-py's context and defaults: certificate and host name verified) and ``unix://``,
with AUTH (user and password), CLIENT SETNAME and SELECT of the URL's db.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis

from realtime.resp import Endpoint, pack

logger = logging.getLogger(__name__)

# Takes every pub/sub message one socket read completed: [(channel, data), ...].
Dispatch = Callable[[list[tuple[bytes, bytes]]], None]

# Channels per SUBSCRIBE when a new connection takes over the subscriptions of a lost one.
RESUBSCRIBE_BATCH = 1000
RECONNECT_FIRST = 0.05
RECONNECT_MAX = 2.0

_MESSAGE = b"message"


class SubscriberError(ConnectionError):
    """The subscriber's connection failed or Redis refused one of its commands."""


class _Reply:
    """A command waiting for its replies (a SUBSCRIBE of k channels gets k of them)."""

    __slots__ = ("future", "left", "ping")

    def __init__(
        self, future: asyncio.Future[Any] | None, left: int, *, ping: bool = False
    ) -> None:
        self.future = future
        self.left = left
        self.ping = ping


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: Subscriber) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[_Reply] = deque()
        self.last_read = time.monotonic()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream's: a Transport

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        self.reader.feed(data)
        batch: list[tuple[bytes, bytes]] = []
        gets = self.reader.gets
        try:
            while (reply := gets()) is not False:
                if type(reply) is list and reply[0] == _MESSAGE:
                    batch.append((reply[1], reply[2]))
                else:
                    self._answer(reply)
        except hiredis.ProtocolError:
            logger.exception("redis subscriber: unreadable reply, dropping the connection")
            self.abort()
        if batch:
            self.owner._dispatch_safely(batch)
            # One read per loop turn: libuv reads a readable socket up to 32 times in one
            # turn, and behind a backlog that handed the consumers several reads' messages
            # before their frames were flushed (the flush is a callback of the turn), so a
            # topic's progress frames coalesced instead of leaving. Paused here, resumed by a
            # callback queued behind the flush.
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
                asyncio.get_running_loop().call_soon(self._resume)

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _answer(self, reply: Any) -> None:
        if not self.waiting:
            return  # an unsubscribe push nobody waits for
        head = self.waiting[0]
        error = isinstance(reply, hiredis.ReplyError)
        head.left -= 1
        if head.left > 0 and not error:
            return
        self.waiting.popleft()
        if head.future is not None and not head.future.done():
            if error:
                head.future.set_exception(SubscriberError(f"redis refused: {reply}"))
            else:
                head.future.set_result(reply)

    def send(self, payload: bytes, replies: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._write(payload, _Reply(future, replies))
        return future

    def send_nowait(self, payload: bytes, replies: int, *, ping: bool = False) -> None:
        """A command whose replies nobody awaits (UNSUBSCRIBE, the health check's PING)."""
        self._write(payload, _Reply(None, replies, ping=ping))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _write(self, payload: bytes, reply: _Reply) -> None:
        if self.lost or self.transport is None or self.transport.is_closing():
            raise SubscriberError("redis subscriber connection is closed")
        self.waiting.append(reply)
        self.transport.write(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self.waiting:
            future = self.waiting.popleft().future
            if future is not None and not future.done():
                future.set_exception(SubscriberError(f"redis subscriber connection lost: {exc}"))
        self.owner._lost(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Subscriber:
    """The pub/sub connection of one event loop to one Redis (see the module doc)."""

    def __init__(self, endpoint: Endpoint, dispatch: Dispatch) -> None:
        self.endpoint = endpoint
        self.dispatch = dispatch
        # Channel -> None once Redis confirmed it, or the future of its SUBSCRIBE in flight.
        self.channels: dict[str, asyncio.Future[None] | None] = {}
        self.connections = 0  # connections made, for tests and logs
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._health: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._protocol is not None and not self._protocol.lost

    # --- subscriptions -------------------------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        """Hold ``channel``; returns once Redis confirmed it (at once if it already had)."""
        self._closed = False
        state = self.channels.get(channel, False)
        if state is None:
            return
        if isinstance(state, asyncio.Future):
            await asyncio.shield(state)
            return
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.channels[channel] = mine
        try:
            protocol = await self._connected()
            await protocol.send(pack(b"SUBSCRIBE", channel), 1)
        except BaseException as exc:
            if self.channels.get(channel) is mine:
                del self.channels[channel]
            if not mine.done():
                mine.set_exception(
                    exc if isinstance(exc, Exception) else SubscriberError("subscribe cancelled")
                )
                mine.exception()  # retrieved: a waiter may not exist
            raise
        if self.channels.get(channel) is mine:
            self.channels[channel] = None
        mine.set_result(None)

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self.channels:
            return
        if (state := self.channels[channel]) is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(state)
        self.channels.pop(channel, None)
        protocol = self._protocol
        if protocol is None or protocol.lost:
            return  # the next connection will not subscribe it
        # Not awaited: what follows on this connection comes after it all the same, and a
        # cancelled cleanup (channels-redis' receive()) has nothing left to wait for.
        with contextlib.suppress(SubscriberError):
            protocol.send_nowait(pack(b"UNSUBSCRIBE", channel), 1)

    async def close(self) -> None:
        self._closed = True
        self.channels.clear()
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnect_task
            self._reconnect_task = None
        if self._health is not None:
            self._health.cancel()
            self._health = None
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None

    # --- the connection -------------------------------------------------------------------
    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connect_done)
        return await asyncio.shield(self._connecting)

    def _connect_done(self, future: asyncio.Future[_Protocol]) -> None:
        self._connecting = None
        if not future.cancelled():
            future.exception()  # retrieved here: the callers have theirs

    async def _connect(self) -> _Protocol:
        endpoint = self.endpoint
        loop = asyncio.get_running_loop()
        if endpoint.path is not None:
            opening = loop.create_unix_connection(lambda: _Protocol(self), endpoint.path)
        else:
            opening = loop.create_connection(
                lambda: _Protocol(self),
                endpoint.host or "localhost",
                endpoint.port,
                ssl=endpoint.ssl,
                server_hostname=endpoint.server_hostname,
            )
        try:
            async with asyncio.timeout(endpoint.connect_timeout):
                _, protocol = await opening
                try:
                    await self._handshake(protocol)
                except BaseException:
                    protocol.close()
                    raise
        except TimeoutError as exc:
            raise SubscriberError(f"redis subscriber: no answer from {self._where()}") from exc
        except OSError as exc:
            if isinstance(exc, SubscriberError):
                raise
            raise SubscriberError(f"redis subscriber cannot connect to {self._where()}") from exc
        self._protocol = protocol
        self.connections += 1
        self._arm_health()
        return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        endpoint = self.endpoint
        replies = [protocol.send(command, 1) for command in endpoint.setup_commands()]
        # Take over what an earlier connection held (confirmed channels; those in flight
        # send their own SUBSCRIBE once this returns).
        held = [channel for channel, state in self.channels.items() if state is None]
        for start in range(0, len(held), RESUBSCRIBE_BATCH):
            batch = held[start : start + RESUBSCRIBE_BATCH]
            replies.append(protocol.send(pack(b"SUBSCRIBE", *batch), len(batch)))
        for reply in replies:
            await reply

    def _lost(self, protocol: _Protocol) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        if self._closed or self._reconnect_task is not None:
            return
        if not any(state is None for state in self.channels.values()):
            return  # nothing to take over: the next subscribe connects
        logger.warning("redis subscriber lost its connection to %s; reconnecting", self._where())
        self._reconnect_task = asyncio.get_running_loop().create_task(
            self._reconnect(), name="redis-subscriber-reconnect"
        )

    async def _reconnect(self) -> None:
        delay = RECONNECT_FIRST
        try:
            while not self._closed:
                try:
                    await self._connected()
                except SubscriberError as exc:
                    logger.warning(
                        "redis subscriber reconnect failed, next in %.2f s: %s", delay, exc
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
                    continue
                logger.info("redis subscriber reconnected; %s channel(s) held", len(self.channels))
                return
        finally:
            self._reconnect_task = None

    def _arm_health(self) -> None:
        interval = self.endpoint.health_check_interval
        if interval > 0 and self._health is None:
            self._health = asyncio.get_running_loop().call_later(interval, self._check_health)

    def _check_health(self) -> None:
        """Every interval: PING an idle connection; drop one whose PING went unanswered."""
        self._health = None
        protocol = self._protocol
        if self._closed or protocol is None or protocol.lost:
            return
        interval = self.endpoint.health_check_interval
        if time.monotonic() - protocol.last_read >= interval:
            if any(reply.ping for reply in protocol.waiting):
                logger.warning("redis subscriber: PING unanswered, dropping the connection")
                protocol.abort()
                return
            with contextlib.suppress(SubscriberError):
                protocol.send_nowait(pack(b"PING"), 1, ping=True)
        self._arm_health()

    def _dispatch_safely(self, batch: list[tuple[bytes, bytes]]) -> None:
        try:
            self.dispatch(batch)
        except Exception:  # the read callback must survive any consumer's bug
            logger.exception("redis subscriber: dispatch failed")

    def _where(self) -> str:
        return self.endpoint.where()
