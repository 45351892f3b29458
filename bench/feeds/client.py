"""Dashboard client process: D WebSocket connections, each watching the same 500 jobs, either
through the tenant feed (one ``subscribe`` to ``jobs``) or through one subscription per job.

Run by ``bench.feeds.run``, never by hand. The WebSocket plumbing is ``bench/ws/client.py``'s
(raw asyncio protocol, the publish time read from ``ts:`` in each frame); each connection here
keeps its own counters, so the process knows when every dashboard got its answers.

Protocol (JSON lines): first stdin line ``{"host", "port", "path", "token", "mode": "feed" |
"topics", "topics", "dashboards"}``; answered ``{"ready": D, "seconds": …, "open_ms": [...]}``
once every connection got its answers (feed: ``subscribed``; topics: one frame per topic).
Then the commands of ``bench/ws/client.py``: ``reset``, ``report``, ``quit``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ws.client import Stats, WsClient, _mask  # noqa: E402


async def _dashboard(job: dict[str, Any], stats: Stats) -> tuple[WsClient, float]:
    """One connection with its subscriptions; returns it and the ms until all were answered."""
    host, port = job["host"], int(job["port"])
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {job['path']} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: realtime.v1, bearer.{job['token']}\r\n\r\n"
    ).encode()
    names = ["jobs"] if job["mode"] == "feed" else list(job["topics"])
    subscribes = b"".join(
        _mask(json.dumps({"type": "subscribe", "topic": name}).encode()) for name in names
    )
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    _, proto = await loop.create_connection(
        lambda: WsClient(stats, request, subscribes), host, port
    )
    await asyncio.wait_for(proto.first_frame, timeout=60)
    deadline = time.monotonic() + 60
    while stats.frames < len(names):  # every subscribe answered (a state or "subscribed")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stats.frames} of {len(names)} subscribes answered")
        await asyncio.sleep(0.005)
    return proto, (time.perf_counter() - started) * 1000


async def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    job: dict[str, Any] = json.loads(await reader.readline())
    per_connection = [Stats() for _ in range(int(job["dashboards"]))]
    started = time.monotonic()
    opened = []
    for stats in per_connection:  # one after the other: the time to open one dashboard
        opened.append(await _dashboard(job, stats))
    clients = [client for client, _ms in opened]
    _say(
        {
            "ready": len(clients),
            "seconds": round(time.monotonic() - started, 2),
            "open_ms": [round(ms, 1) for _client, ms in opened],
        }
    )
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "reset":
            for stats in per_connection:
                stats.reset()
                stats.since = int(command.get("since", 0))
            _say({"ok": True})
        elif command["cmd"] == "report":
            cutoff = int(command.get("until", 2**62))
            latency = [
                lat
                for stats in per_connection
                for pub, lat in zip(stats.published, stats.latency, strict=True)
                if pub < cutoff
            ]
            _say(
                {
                    "frames": sum(stats.frames for stats in per_connection),
                    "latency_us": latency,
                    "open": sum(1 for c in clients if not c.closed.done()),
                }
            )
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
