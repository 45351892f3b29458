"""A small HTTP/1.1 load generator: asyncio streams, keep-alive, fixed concurrency.

It sends prebuilt request bytes on a fixed number of persistent connections, one request in
flight per connection, and reads each answer by Content-Length (or chunked encoding). That is
all the benchmark needs, and it costs a fraction of the CPU of a general client (httpx,
aiohttp), which matters on two cores shared with the server. Every answer is checked: a status
other than 200 or a body that fails the target's check counts as an error, not a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Check = Callable[[bytes], bool]


class ProtocolError(Exception):
    """The server's answer was not an HTTP/1.1 response this client can read."""


@dataclass(frozen=True)
class Target:
    """One endpoint under test: the requests to cycle through and how to check each answer."""

    name: str
    requests: Sequence[bytes]
    checks: Sequence[Check]


@dataclass
class Outcome:
    """What one timed window against one target produced."""

    name: str
    seconds: float = 0.0
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)


def build_request(host: str, path: str, token: str | None) -> bytes:
    """The raw bytes of ``GET path`` on a keep-alive connection."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        raise ProtocolError(head[:40].decode(errors="replace"))
    status = int(head[9:12])
    lower = head.lower()
    marker = lower.find(b"\r\ncontent-length:")
    if marker >= 0:
        end = lower.index(b"\r\n", marker + 2)
        body = await reader.readexactly(int(head[marker + 17 : end]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    else:
        raise ProtocolError("neither Content-Length nor chunked")
    return status, body, b"\r\nconnection: close" not in lower


class Connection:
    """One keep-alive connection that reopens itself after a failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(raw)
            status, body, keep = await read_response(self._reader)
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class Pool:
    """``size`` connections to one server, reused across windows."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.connections = [Connection(host, port) for _ in range(size)]

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    async def get(self, raw: bytes) -> tuple[int, bytes]:
        """One request on the first connection (for control calls between windows)."""
        return await self.connections[0].request(raw)

    async def prime(self, target: Target) -> None:
        """One untimed request per connection, so a window never starts on a connection the
        server closed while it sat idle (uvicorn's keep-alive timeout is 5 s; a companion
        server's connections wait while the other targets run)."""

        async def one(index: int, connection: Connection) -> None:
            for _attempt in range(2):
                try:
                    await connection.request(target.requests[index % len(target.requests)])
                    return
                except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError):
                    continue

        await asyncio.gather(*(one(i, c) for i, c in enumerate(self.connections)))

    async def run(self, target: Target, seconds: float) -> Outcome:
        """Keep every connection busy with ``target`` for ``seconds``; count and time answers."""
        outcome = Outcome(target.name)
        count = len(target.requests)
        started = time.perf_counter()
        stop = started + seconds

        async def drive(index: int, connection: Connection) -> None:
            position = index
            clock = time.perf_counter
            latencies = outcome.latencies
            while clock() < stop:
                item = position % count
                position += 1
                sent = clock()
                try:
                    status, body = await connection.request(target.requests[item])
                except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError) as exc:
                    outcome.errors += 1
                    if len(outcome.error_samples) < 5:
                        outcome.error_samples.append(repr(exc))
                    await asyncio.sleep(0.01)
                    continue
                latencies.append(clock() - sent)
                if status == 200 and target.checks[item](body):
                    outcome.ok += 1
                else:
                    outcome.errors += 1
                    if len(outcome.error_samples) < 5:
                        outcome.error_samples.append(f"{status} {body[:120]!r}")

        await asyncio.gather(
            *(drive(index, connection) for index, connection in enumerate(self.connections))
        )
        outcome.seconds = time.perf_counter() - started
        return outcome


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (it is, with uvicorn[standard]); asyncio's otherwise."""
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
