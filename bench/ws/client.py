"""Load-generating WebSocket client process: many connections, one topic each, minimal cost.

Run by ``bench.ws.run`` (two of these per measurement), never by hand. It speaks just enough
RFC 6455 over a raw asyncio protocol (uvloop) to be cheap per frame: a hand-written upgrade
request, unmasked server frames parsed in place, masked client frames, pong on ping. It does
not parse the JSON of a frame: the publisher embeds ``ts:<16-digit epoch microseconds>`` in
every payload and the client reads those 16 digits, so publish→receive latency costs one
``bytes.find`` per frame.

Protocol with the orchestrator (JSON lines): the first stdin line is the job
``{"host", "port", "path", "token", "topics", "concurrency"}``; the client connects every
topic (subscribe frame, then waits for the first frame back), prints ``{"ready": n, ...}``,
then answers commands: ``{"cmd": "reset"}`` (forget samples), ``{"cmd": "report", "since":
us}`` (latencies of frames published at or after ``since``), ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import struct
import sys
import time
from array import array
from typing import Any, cast

MARK = b"ts:"
_clock = time.time_ns


def _mask(payload: bytes) -> bytes:
    """A masked client text frame (RFC 6455 §5.3)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    repeated = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")
    return header + key + masked


def _control(opcode: int, payload: bytes = b"") -> bytes:
    key = os.urandom(4)
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    masked = bytes(a ^ b for a, b in zip(payload, repeated, strict=True))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | n) + key + masked


class Stats:
    """Samples shared by every connection of the process."""

    def __init__(self) -> None:
        self.frames = 0
        self.published = array("q")  # publish time, epoch µs
        self.latency = array("q")  # receive - publish, µs
        self.since = 0

    def reset(self) -> None:
        self.frames = 0
        self.published = array("q")
        self.latency = array("q")


class WsClient(asyncio.Protocol):
    """One WebSocket connection: upgrade, one subscribe frame, then count frames."""

    def __init__(self, stats: Stats, request: bytes, subscribe: bytes) -> None:
        self.stats = stats
        self.request = request
        self.subscribe = subscribe
        self.buffer = bytearray()
        self.upgraded = False
        self.first_frame: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.first_frame.done():
            self.first_frame.set_exception(ConnectionError(f"closed before first frame: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                self.first_frame.set_exception(ConnectionError(status.decode("latin-1")))
                assert self.transport is not None
                self.transport.close()
                return
            del buf[: end + 4]
            self.upgraded = True
            assert self.transport is not None
            self.transport.write(self.subscribe)
        self._frames()

    def _frames(self) -> None:
        buf = self.buffer
        stats = self.stats
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + length
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode == 1 or opcode == 2 or opcode == 0:
                stats.frames += 1
                i = buf.find(MARK, pos + head, end)
                if i >= 0:
                    sent = int(buf[i + 3 : i + 19])
                    if sent >= stats.since:
                        stats.published.append(sent)
                        stats.latency.append(_clock() // 1000 - sent)
                if not self.first_frame.done():
                    self.first_frame.set_result(None)
            elif opcode == 9:  # ping
                assert self.transport is not None
                self.transport.write(_control(10, bytes(buf[pos + head : end])))
            elif opcode == 8:  # close
                assert self.transport is not None
                self.transport.close()
            pos = end
        if pos:
            del buf[:pos]


async def _open(
    stats: Stats, host: str, port: int, path: str, token: str, topic: str, attempts: int = 5
) -> WsClient:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: realtime.v1, bearer.{token}\r\n\r\n"
    ).encode()
    subscribe = _mask(json.dumps({"type": "subscribe", "topic": topic}).encode())
    loop = asyncio.get_running_loop()
    for attempt in range(attempts):
        try:
            _, proto = await loop.create_connection(
                lambda: WsClient(stats, request, subscribe), host, port
            )
            await asyncio.wait_for(proto.first_frame, timeout=60)
            return proto
        except (OSError, TimeoutError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


async def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)  # the job line lists every topic
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    job: dict[str, Any] = json.loads(await reader.readline())
    stats = Stats()
    gate = asyncio.Semaphore(int(job.get("concurrency", 100)))

    async def one(topic: str) -> WsClient:
        async with gate:
            return await _open(
                stats, job["host"], int(job["port"]), job["path"], job["token"], topic
            )

    started = time.monotonic()
    clients = await asyncio.gather(*(one(t) for t in job["topics"]))
    _say({"ready": len(clients), "seconds": round(time.monotonic() - started, 2)})
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "reset":
            stats.reset()
            stats.since = int(command.get("since", 0))
            _say({"ok": True})
        elif command["cmd"] == "report":
            cutoff = int(command.get("until", 2**62))
            keep = [
                lat for pub, lat in zip(stats.published, stats.latency, strict=True) if pub < cutoff
            ]
            open_now = sum(1 for c in clients if not c.closed.done())
            _say({"frames": stats.frames, "latency_us": keep, "open": open_now})
        elif command["cmd"] == "quit":
            break
    for client in clients:
        if client.transport is not None:
            client.transport.close()


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
