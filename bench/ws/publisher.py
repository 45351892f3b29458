"""Publisher process: sends updates at a fixed rate, round robin over the topics.

Run by ``bench.ws.run``. Every payload carries ``ts:<16-digit epoch µs>`` (the publish time),
which the clients read back for publish→receive latency. Modes:

* ``design``: the project's publish path. Each update is a ``Change`` (status PROCESSING,
  progress with ``step = "ts:…"``) turned into script arguments by ``realtime.store`` itself
  (``_apply_args``: validation, encoding, keys, group channel) and run as the state script
  (``lua/state.lua``: HSETs, TTLs, seq, and the PUBLISH of the msgpack group message that
  ``RedisPubSubChannelLayer`` delivers to the consumers). The calls of one 5 ms tick go in one
  pipeline, so the publisher's round trips are not what is measured; every reply is checked
  with ``store._publish_result`` (accepted or not).
* ``stock``: ``channel_layer.group_send(group, {"type": "bench.state", "payload": {...}})`` as
  a typical Channels app does, with the stock layer of ``bench.ws.stock_settings``; the calls
  of a tick run concurrently.
* ``ceiling``: ``PUBLISH ceil:<topic> <json>`` pipelined per tick.

Protocol (JSON lines): first stdin line ``{"mode", "topics", "tenant_id"}``, answered by
``{"ready": true}``; then ``{"rate", "window_start", "window_end"}`` (epoch µs) publishes
from now until the window ends and answers ``{"sent", "accepted", "window_sent", "late_ticks"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

TICK = 0.005
STOCK_CONCURRENCY = 50
PAD = "학생 등록 진행 중"  # step_name_display, like a real import step (and non-ASCII)


def _now_us() -> int:
    return time.time_ns() // 1000


def _stock_payload(topic: str, seq: int, ts: int) -> dict[str, Any]:
    """A ~300-byte JSON document shaped like the design's state frame."""
    return {
        "type": "state",
        "topic": topic,
        "seq": seq,
        "status": "PROCESSING",
        "progress": {
            "percent": 42,
            "step": f"ts:{ts:016d}",
            "step_index": 3,
            "step_total": 5,
            "step_name_display": "import students",
            "step_percent": 40,
            "remaining_seconds": 12,
        },
        "job_type": "excel_import",
        "error": None,
        "result": None,
        "result_in_db": False,
        "updated_at": ts // 1000,
    }


def design_sender(topics: list[str], tenant_id: int) -> Callable[[list[int], int], Awaitable[int]]:
    import django

    django.setup()
    from realtime import store
    from realtime.clients import sync_redis
    from realtime.keys import Topic
    from realtime.state import Change, Progress

    parsed = [Topic.parse(t) for t in topics]
    script = store._sync_script()
    client = sync_redis()

    async def send(indexes: list[int], ts: int) -> int:
        pipe = client.pipeline(transaction=False)
        for i in indexes:
            change = Change(
                status="PROCESSING",
                progress=Progress(
                    percent=42,
                    step=f"ts:{ts:016d}",
                    step_index=3,
                    step_total=5,
                    step_name_display=PAD,
                    step_percent=40,
                    remaining_seconds=12,
                ),
            )
            keys, args = store._apply_args(tenant_id, parsed[i], change)
            script(keys=keys, args=args, client=pipe)
        replies = pipe.execute()
        return sum(1 for r in replies if store._publish_result(r).accepted)

    return send


def stock_sender(topics: list[str]) -> Callable[[list[int], int], Awaitable[int]]:
    import django

    django.setup()
    from channels.layers import get_channel_layer

    from bench.ws.stock_asgi import group_of

    layer = get_channel_layer()
    groups = [group_of(t) for t in topics]
    seqs = [0] * len(topics)
    # The core layer's pool holds 100 connections and raises beyond: stay well under it.
    gate = asyncio.Semaphore(STOCK_CONCURRENCY)

    async def one(i: int, ts: int) -> None:
        seqs[i] += 1
        payload = _stock_payload(topics[i], seqs[i], ts)
        async with gate:
            await layer.group_send(groups[i], {"type": "bench.state", "payload": payload})

    async def send(indexes: list[int], ts: int) -> int:
        await asyncio.gather(*(one(i, ts) for i in indexes))
        return len(indexes)

    return send


def ceiling_sender(topics: list[str]) -> Callable[[list[int], int], Awaitable[int]]:
    import os

    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    channels = [f"ceil:{t}" for t in topics]
    seqs = [0] * len(topics)

    async def send(indexes: list[int], ts: int) -> int:
        pipe = client.pipeline(transaction=False)
        for i in indexes:
            seqs[i] += 1
            text = json.dumps(_stock_payload(topics[i], seqs[i], ts), separators=(",", ":"))
            pipe.publish(channels[i], text)
        pipe.execute()
        return len(indexes)

    return send


async def run_step(
    send: Callable[[list[int], int], Awaitable[int]],
    n_topics: int,
    cursor: list[int],
    rate: float,
    window_start: int,
    window_end: int,
) -> dict[str, Any]:
    """Publish at ``rate`` from now until ``window_end`` (epoch µs); count the window's share."""
    start = time.monotonic()
    end = start + (window_end - _now_us()) / 1e6
    sent = window_sent = accepted = late = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int(rate * (now - start)) - sent
        if due > 0:
            indexes = [(cursor[0] + k) % n_topics for k in range(due)]
            cursor[0] = (cursor[0] + due) % n_topics
            ts = _now_us()
            accepted += await send(indexes, ts)
            sent += due
            if window_start <= ts < window_end:
                window_sent += due
        spent = time.monotonic() - now
        if spent > TICK * 2:
            late += 1
        await asyncio.sleep(max(0.0, TICK - spent))
    return {"sent": sent, "accepted": accepted, "window_sent": window_sent, "late_ticks": late}


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)  # the job line lists every topic
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    job = json.loads(await reader.readline())
    topics: list[str] = job["topics"]
    if job["mode"] == "design":
        send = design_sender(topics, int(job["tenant_id"]))
    elif job["mode"] == "stock":
        send = stock_sender(topics)
    else:
        send = ceiling_sender(topics)
    cursor = [int(uuid.uuid4().int % len(topics))]
    _say({"ready": True})
    while line := await reader.readline():
        step = json.loads(line)
        if step.get("cmd") == "quit":
            break
        _say(
            await run_step(
                send,
                len(topics),
                cursor,
                float(step["rate"]),
                int(step["window_start"]),
                int(step["window_end"]),
            )
        )


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
