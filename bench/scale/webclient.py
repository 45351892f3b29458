"""A small asyncio HTTP/1.1 client for the scale load clients: keep-alive pools per server,
sockets bound to the client process's own source address, JSON and multipart bodies.

Answers are read by ``bench.http.load.read_response`` (Content-Length or chunked). A general
client (httpx, aiohttp) is not installed and would cost more CPU on two shared cores.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.http.load import ProtocolError, read_response

# Linux: bind() picks no port until connect() (so 28k ports per destination, not per source).
IP_BIND_ADDRESS_NO_PORT = 24
# Below uvicorn's --timeout-keep-alive (5 s): an idle connection older than this is not reused.
KEEPALIVE_SECONDS = 3.0


def bound_socket(source: str) -> socket.socket:
    """A non-blocking TCP socket bound to ``source`` (a 127.0.0.x address), port chosen at
    connect time."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.bind((source, 0))
    sock.setblocking(False)
    return sock


async def open_bound(source: str, host: str, port: int) -> socket.socket:
    sock = bound_socket(source)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class Tally:
    """Answers per endpoint name: count by status and latencies (ms)."""

    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)

    def add(self, name: str, status: int, ms: float) -> None:
        counts = self.statuses[name]
        counts[status] = counts.get(status, 0) + 1
        self.latencies[name].append(ms)

    def fail(self, name: str, error: str) -> None:
        self.errors[name] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{name}: {error}")

    def take(self) -> dict[str, Any]:
        out = {
            "statuses": {k: dict(v) for k, v in self.statuses.items()},
            "latencies": {k: list(v) for k, v in self.latencies.items()},
            "errors": dict(self.errors),
            "samples": list(self.samples),
        }
        self.statuses.clear()
        self.latencies.clear()
        self.errors.clear()
        self.samples.clear()
        return out


class _Conn:
    def __init__(self, source: str, host: str, port: int) -> None:
        self.source, self.host, self.port = source, host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last = 0.0

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            sock = await open_bound(self.source, self.host, self.port)
            self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=2**22)
        assert self.reader is not None
        try:
            self.writer.write(raw)
            status, body, keep = await read_response(self.reader)
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Client:
    """Keep-alive connections to any host:port, at most ``per_server`` in use at once each."""

    def __init__(self, source: str, *, per_server: int = 4, timeout: float = 60.0) -> None:
        self.source = source
        self.per_server = per_server
        self.timeout = timeout
        self.tally = Tally()
        self._idle: dict[tuple[str, int], list[_Conn]] = defaultdict(list)
        self._gates: dict[tuple[str, int], asyncio.Semaphore] = {}

    async def call(
        self,
        name: str,
        method: str,
        url: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One request; status and body (status 0 when it could not be made). Counted in
        ``tally`` under ``name``."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Accept: application/json"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if json_body is not None:
            body = json.dumps(json_body).encode()
            lines.append("Content-Type: application/json")
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if body is not None or method in {"POST", "PUT"}:
            lines.append(f"Content-Length: {len(body or b'')}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        key = (host, port)
        gate = self._gates.setdefault(key, asyncio.Semaphore(self.per_server))
        started = time.perf_counter()
        async with gate:
            idle = self._idle[key]
            # uvicorn closes a keep-alive connection idle for 5 s: take only fresher ones.
            while idle and time.monotonic() - idle[-1].last > KEEPALIVE_SECONDS:
                idle.pop().close()
            conn = idle.pop() if idle else _Conn(self.source, host, port)
            try:
                status, answer = await asyncio.wait_for(conn.request(raw), self.timeout)
            except (
                OSError,
                asyncio.IncompleteReadError,
                ProtocolError,
                ValueError,
                TimeoutError,
            ) as exc:
                conn.close()
                self.tally.fail(name, repr(exc)[:160])
                return 0, b""
            conn.last = time.monotonic()
            idle.append(conn)
        self.tally.add(name, status, (time.perf_counter() - started) * 1000)
        return status, answer

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type; files are (filename, type, bytes)."""
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in fields.items():
        disposition = f'Content-Disposition: form-data; name="{name}"'
        chunks.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
    for name, (filename, content_type, data) in files.items():
        chunks.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
