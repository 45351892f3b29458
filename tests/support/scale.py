"""Helpers of the scale tests (tests/scale): clients that reconnect like the browser client,
connection counts read from the kernel, jobs posted through the proxy, and "hosts" made of
network namespaces.

The private Redis server and the TCP fault proxy are the fault suite's (tests/faults), reused
as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from tests.faults.support import RedisServer, wait_for
from tests.support.faultproxy import FaultProxy, Mode

__all__ = [
    "BrowserLikeClient",
    "Clients",
    "FaultProxy",
    "Mode",
    "Namespaces",
    "RedisServer",
    "SourceRouter",
    "connections_by_pid",
    "established_to",
    "post_job",
    "wait_for",
]

# The browser client's reconnect backoff (frontend-client/src/backoff.ts): full jitter.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
TERMINAL = ("DONE", "FAILED")


# --- clients ------------------------------------------------------------------------------------
@dataclass
class BrowserLikeClient:
    """One WebSocket watching one topic, reconnecting as frontend-client does: a delay drawn
    from [0, 0.5 s · 2^attempt) (capped at 20 s), reset once a connection opens, and a
    resubscribe with ``since`` and ``epoch``. Records every state frame it receives."""

    url: str
    token: str
    origin: str
    topic: str
    positions: list[tuple[int, int]] = field(default_factory=list)  # every state frame
    statuses: list[str] = field(default_factory=list)
    connects: int = 0
    reconnect_attempts: list[int] = field(default_factory=list)  # attempts per reconnection
    reconnected_at: list[float] = field(default_factory=list)
    dropped_at: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    subscribed: threading.Event = field(default_factory=threading.Event)

    @property
    def held(self) -> tuple[int, int]:
        return max(self.positions, default=(0, 0))

    @property
    def status(self) -> str | None:
        return self.statuses[-1] if self.statuses else None

    def in_order_once(self) -> bool:
        """Every state frame strictly newer than the one before: no repeat, no step back."""
        return all(a < b for a, b in zip(self.positions, self.positions[1:], strict=False))

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        attempt = 0
        while True:
            try:
                async with connect(
                    self.url,
                    subprotocols=["realtime.v1", f"bearer.{self.token}"],  # type: ignore[list-item]
                    origin=self.origin,  # type: ignore[arg-type]
                    open_timeout=5,
                ) as socket_:
                    self.connects += 1
                    if self.connects > 1:
                        self.reconnect_attempts.append(attempt)
                        self.reconnected_at.append(time.monotonic())
                    attempt = 0
                    frame: dict[str, Any] = {"type": "subscribe", "topic": self.topic}
                    if self.positions:
                        frame["epoch"], frame["since"] = self.held
                    await socket_.send(json.dumps(frame))
                    async for raw in socket_:
                        self._take(json.loads(raw))
            except (TimeoutError, OSError, WebSocketException):
                pass
            self.dropped_at.append(time.monotonic())
            attempt += 1
            ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(0, ceiling))

    def _take(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "error":
            self.errors.append(str(message.get("code")))
        if kind in ("state", "subscribed", "error"):
            self.subscribed.set()
        if kind == "state":
            self.positions.append((int(message.get("epoch", 0)), int(message["seq"])))
            self.statuses.append(str(message["status"]))


class Clients:
    """Browser-like clients on a background event loop of their own."""

    def __init__(self) -> None:
        self.all: list[BrowserLikeClient] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def open(self, url: str, token: str, origin: str, topic: str) -> BrowserLikeClient:
        client = BrowserLikeClient(url=url, token=token, origin=origin, topic=topic)
        self.all.append(client)
        asyncio.run_coroutine_threadsafe(client.run(), self._loop)
        if not client.subscribed.wait(20):
            raise AssertionError(f"client of {topic} at {url} got no answer")
        return client

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def post_job(base_url: str, token: str, recipients: int, *, origin: str) -> dict[str, Any]:
    """``POST /api/v1/jobs/`` a messaging job, as a browser does (through the proxy)."""
    body = json.dumps(
        {
            "job_type": "messaging.send",
            "payload": {
                "subject": "Scale drill",
                "body": "Class at ten.",
                "recipients": [f"s{i}@example.com" for i in range(recipients)],
            },
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{base_url}/api/v1/jobs/",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Origin": origin,
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return dict(json.loads(response.read()))


# --- connections, as the kernel counts them ---------------------------------------------------
def _tcp_rows() -> Iterator[list[str]]:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            next(rows)
            for row in rows:
                yield row.split()


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def established_to(port: int) -> int:
    """Established TCP connections of this network namespace whose remote port is ``port``."""
    return sum(1 for row in _tcp_rows() if row[3] == "01" and _port(row[2]) == port)


def connections_by_pid(port: int, pids: list[int]) -> dict[int, int]:
    """Established connections to remote ``port`` held by each of ``pids`` (by socket inode)."""
    inodes = {row[9]: row for row in _tcp_rows() if row[3] == "01" and _port(row[2]) == port}
    counts = {}
    for pid in pids:
        held = 0
        with contextlib.suppress(FileNotFoundError, PermissionError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        held += 1
        counts[pid] = held
    return counts


# --- hosts: network namespaces on one bridge ----------------------------------------------------
def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")


@dataclass
class Namespaces:
    """Network namespaces ``<prefix><name>`` on a bridge in this (the root) namespace.

    The bridge holds ``<subnet>.1``; namespace number i holds ``<subnet>.<10 + i>`` and routes
    everything through the bridge. :meth:`remove` deletes the namespaces (their veth pairs go
    with them) and the bridge; :meth:`create` first removes leftovers of a crashed run.
    """

    names: list[str]
    prefix: str = "ac77"
    subnet: str = "10.77.0"
    addresses: dict[str, str] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def netns(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def launcher(self, name: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.netns(name))

    def create(self) -> Namespaces:
        self.remove()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index, name in enumerate(self.names, start=1):
            ns, outside, inside = self.netns(name), f"{self.prefix}{name}o", f"{self.prefix}{name}i"
            address = f"{self.subnet}.{10 + index}"
            _ip("netns", "add", ns)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", ns)
            _ip("link", "set", outside, "master", self.bridge)
            _ip("link", "set", outside, "up")
            _ip("addr", "add", f"{address}/24", "dev", inside, netns=ns)
            _ip("link", "set", inside, "up", netns=ns)
            _ip("link", "set", "lo", "up", netns=ns)
            _ip("route", "add", "default", "via", self.gateway, netns=ns)
            self.addresses[name] = address
        return self

    def remove(self) -> None:
        for name in self.names:
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", self.netns(name))
        with contextlib.suppress(RuntimeError):
            _ip("link", "del", self.bridge)

    def existing(self) -> list[str]:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        ours = {self.netns(name) for name in self.names}
        return [line.split()[0] for line in listed.splitlines() if line and line.split()[0] in ours]


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be made here (None when they can): the exact error."""
    probe = f"ac77probe{os.getpid()}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return f"`ip netns add` failed: {result.stderr.strip() or result.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


class SourceRouter:
    """A TCP forwarder that sends each connection to an upstream chosen by its source address.

    Every "host" reaches Redis at the same address (so their settings are identical), and the
    router hands each host's connections to that host's own :class:`FaultProxy`, which can then
    cut one host off without touching the others.
    """

    def __init__(self, listen: tuple[str, int], routes: dict[str, int], default: int) -> None:
        self.listen, self.routes, self.default = listen, routes, default
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def port(self) -> int:
        return self.listen[1]

    def start(self) -> SourceRouter:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, *self.listen)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.routes.get(peer, self.default)
            )
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def database_url(host: str | None = None, port: int | None = None) -> str:
    """The test database's URL for a child process, optionally through another address."""
    db = connection.settings_dict
    host = host or db.get("HOST") or "127.0.0.1"
    port = port or int(db.get("PORT") or 5432)
    return f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}"


def moto_port() -> int:
    port = urlsplit(settings.AWS_ENDPOINT_URL).port
    assert port is not None
    return port


def read_metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


def log_tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


__all__ += ["database_url", "log_tail", "moto_port", "netns_unavailable", "read_metric_lines"]
