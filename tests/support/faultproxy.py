"""A small TCP fault proxy: put it between a process and Redis, PostgreSQL or moto, then break
the wire on purpose (docs/adr/0010-a-hand-written-tcp-fault-proxy.md).

The proxy runs its own asyncio loop in a daemon thread of the test process, listens on
127.0.0.1 on a free port and forwards every connection to one upstream. The test switches its
mode at any time; a switch has taken effect on every open connection when the call returns:

- ``pass``: bytes flow both ways unchanged;
- ``delay``: every chunk, both ways, is delivered ``delay_ms`` after it arrived (latency, not
  a bandwidth cap: chunks queue, they do not wait for each other);
- ``drop``: new connections are accepted and closed at once (FIN); open ones are closed too;
- ``blackhole``: new connections are accepted and never answered; open ones stop forwarding.
  Whatever arrives is read and thrown away, so the peer's writes succeed and its reads hang
  until its own timeout. A connection that lost bytes this way can never carry its protocol
  again: it is reset when the mode changes away from ``blackhole``;
- ``reset``: open connections and every new one are reset (``SO_LINGER`` 0, so the peer gets
  an RST, not a FIN).

Usage::

    with FaultProxy("127.0.0.1", redis_port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        proxy.blackhole()
        ...
        proxy.pass_()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any

CHUNK = 65_536


class Mode(StrEnum):
    PASS = "pass"
    DELAY = "delay"
    DROP = "drop"
    BLACKHOLE = "blackhole"
    RESET = "reset"


@dataclass
class ProxyStats:
    accepted: int = 0
    dropped: int = 0  # closed at accept (drop) or reset at accept (reset)
    reset: int = 0  # open connections reset (reset mode, or leaving blackhole)
    blackholed_bytes: int = 0
    forwarded_bytes: int = 0


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One client connection and, unless it was blackholed from the start, its upstream."""

    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter
    upstream_reader: asyncio.StreamReader | None = None
    upstream_writer: asyncio.StreamWriter | None = None
    poisoned: bool = False  # bytes were thrown away: the protocol on it is broken for good
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self, *, rst: bool) -> None:
        for writer in (self.client_writer, self.upstream_writer):
            if writer is None:
                continue
            if rst:
                _abort_with_rst(writer)
            else:
                with contextlib.suppress(Exception):
                    writer.close()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """Forward ``listen_host:port`` to ``upstream_host:upstream_port``, breaking it on demand."""

    def __init__(
        self, upstream_host: str, upstream_port: int, *, listen_host: str = "127.0.0.1"
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.port = 0
        self.mode = Mode.PASS
        self.delay_ms = 0.0
        self.stats = ProxyStats()
        self._links: set[_Link] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: OSError | None = None

    # --- lifecycle (test thread) -----------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("fault proxy did not start")
        if self._startup_error is not None:
            raise RuntimeError("fault proxy did not start") from self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.listen_host}:{self.port}"

    @property
    def connections(self) -> int:
        """Client connections currently open through the proxy."""
        return self._call(self._count)

    # --- switching modes (test thread) -----------------------------------------------------
    def set_mode(self, mode: Mode | str, *, delay_ms: float = 0.0) -> None:
        """Switch every open and future connection to ``mode``; done when this returns."""
        self._call(self._switch, Mode(mode), float(delay_ms))

    def pass_(self) -> None:
        self.set_mode(Mode.PASS)

    def delay(self, ms: float) -> None:
        self.set_mode(Mode.DELAY, delay_ms=ms)

    def drop(self) -> None:
        self.set_mode(Mode.DROP)

    def blackhole(self) -> None:
        self.set_mode(Mode.BLACKHOLE)

    def reset(self) -> None:
        self.set_mode(Mode.RESET)

    @contextlib.contextmanager
    def fault(self, mode: Mode | str, *, delay_ms: float = 0.0) -> Iterator[float]:
        """``mode`` inside the block, ``pass`` after it; yields when the fault started."""
        self.set_mode(mode, delay_ms=delay_ms)
        try:
            yield time.monotonic()
        finally:
            self.pass_()

    def _call(self, function: Any, *args: Any) -> Any:
        if self._loop is None:
            raise RuntimeError("the fault proxy is not running")

        async def call() -> Any:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(10)

    # --- the loop (proxy thread) -----------------------------------------------------------
    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._listen())
        except OSError as exc:  # reported to start(), which raises it
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen_host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.close(rst=True)
        self._links.clear()
        if self._server is not None:
            await self._server.wait_closed()
        asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)

    def _count(self) -> int:
        return len(self._links)

    def _switch(self, mode: Mode, delay_ms: float) -> None:
        self.mode, self.delay_ms = mode, delay_ms
        for link in list(self._links):
            if mode in (Mode.DROP, Mode.RESET) or (link.poisoned and mode is not Mode.BLACKHOLE):
                self._forget(link, rst=mode is not Mode.DROP)

    def _forget(self, link: _Link, *, rst: bool) -> None:
        if link in self._links:
            self._links.discard(link)
            if rst:
                self.stats.reset += 1
        link.close(rst=rst)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        if self.mode is Mode.DROP:
            self.stats.dropped += 1
            writer.close()
            return
        if self.mode is Mode.RESET:
            self.stats.dropped += 1
            _abort_with_rst(writer)
            return
        link = _Link(client_reader=reader, client_writer=writer)
        self._links.add(link)
        if self.mode is Mode.BLACKHOLE:
            link.poisoned = True  # never connected upstream: useless once the hole closes
            link.tasks.append(asyncio.create_task(self._swallow(link)))
            return
        try:
            link.upstream_reader, link.upstream_writer = await asyncio.open_connection(
                *self.upstream
            )
        except OSError:
            self._forget(link, rst=True)  # the upstream refused: so does the proxy
            return
        if link not in self._links:  # switched to drop/reset while connecting
            link.close(rst=True)
            return
        link.tasks += [
            asyncio.create_task(self._pump(link, reader, link.upstream_writer)),
            asyncio.create_task(self._pump(link, link.upstream_reader, writer)),
        ]

    async def _swallow(self, link: _Link) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await link.client_reader.read(CHUNK):
                self.stats.blackholed_bytes += len(data)
        self._forget(link, rst=False)

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One direction of a link. Delayed chunks go through a queue so that each waits its
        own delay, in order, and reading never stops."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send_when_due(queue, writer))
        link.tasks.append(sender)
        try:
            while data := await reader.read(CHUNK):
                if self.mode is Mode.BLACKHOLE:
                    link.poisoned = True
                    self.stats.blackholed_bytes += len(data)
                    continue
                due = time.monotonic() + (self.delay_ms / 1000 if self.mode is Mode.DELAY else 0.0)
                queue.put_nowait((due, data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        else:
            if not sender.done():
                await queue.join()  # the peer closed: deliver what is on its way, then close
        self._forget(link, rst=False)

    async def _send_when_due(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                self.stats.forwarded_bytes += len(data)
                queue.task_done()
