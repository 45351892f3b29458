"""The practical ceiling: a bare asyncio ``websockets`` server fed by Redis pub/sub.

No framework: one ``PSUBSCRIBE ceil:*`` connection (redis-py asyncio), a dict from topic to
the connections watching it, and ``websockets.broadcast`` of the published text as it is (no
decode, no re-encode). A client sends ``{"type": "subscribe", "topic": t}`` and gets
``{"type": "subscribed"}``. Per-message deflate off, like the design's uvicorn variant.

    python -m bench.ws.ceiling --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
from collections import defaultdict

import redis.asyncio as aredis
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.typing import Subprotocol

watchers: defaultdict[str, set[ServerConnection]] = defaultdict(set)
PREFIX = "ceil:"


async def handler(ws: ServerConnection) -> None:
    topics: list[str] = []
    try:
        async for message in ws:
            frame = json.loads(message)
            if frame.get("type") == "subscribe":
                topic = str(frame["topic"])
                watchers[topic].add(ws)
                topics.append(topic)
                await ws.send(json.dumps({"type": "subscribed", "topic": topic}))
    finally:
        for topic in topics:
            watchers[topic].discard(ws)


async def relay(url: str) -> None:
    client = aredis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(f"{PREFIX}*")
    skip = len(PREFIX)
    while True:
        message = await pubsub.get_message(timeout=None)
        if message is None:
            continue
        conns = watchers.get(message["channel"][skip:].decode())
        if conns:
            broadcast(conns, message["data"].decode())


def _subprotocol(ws: ServerConnection, offered: list[Subprotocol]) -> Subprotocol | None:
    return Subprotocol("realtime.v1") if "realtime.v1" in offered else None


async def main(port: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    relay_task = asyncio.create_task(relay(os.environ["REDIS_URL"]))
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        select_subprotocol=_subprotocol,
        max_queue=16,
    ):
        await relay_task


if __name__ == "__main__":
    import uvloop

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(main(parser.parse_args().port))
