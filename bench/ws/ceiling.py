"""The practical ceiling: a bare asyncio ``websockets`` server fed by Redis pub/sub.

No framework: one ``PSUBSCRIBE ceil:*`` connection (redis-py asyncio), a dict from topic to
the connections watching it, and ``websockets.broadcast`` of the published text as it is (no
decode, no re-encode). A client sends ``{"type": "subscribe", "topic": t}`` and gets
``{"type": "subscribed"}``. Per-message deflate off, like the design's uvicorn variant.

    python -m bench.ws.ceiling --port 8765 [--source script]

``--source script`` (the ``ceiling-script`` variant) feeds it from the production publish path
instead: the publisher runs the state script, which publishes a channel-layer message (msgpack)
to each topic's group channel; this server takes one ``PSUBSCRIBE`` of every group channel and
broadcasts the message's ``frame`` to the topic's watchers. Redis then does what it does for the
design (the script, the hashes, the publish), and the difference to the design is the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
from collections import defaultdict

import msgpack
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


async def relay_script(url: str) -> None:
    """The state script's publishes: ``{layer prefix}__group__<group>``, msgpack messages."""
    client = aredis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    prefix = os.environ.get("REALTIME_KEY_PREFIX", "") + "asgi"
    await pubsub.psubscribe(f"{prefix}__group__*")
    while True:
        message = await pubsub.get_message(timeout=None)
        if message is None:
            continue
        event = msgpack.unpackb(message["data"])
        conns = watchers.get(event.get("topic", ""))
        # The feed copy of each change (ADR 0017) goes to staff feeds; nobody here follows one.
        if conns and event.get("type") == "realtime.state" and not event.get("feed"):
            broadcast(conns, event["frame"])


def _subprotocol(ws: ServerConnection, offered: list[Subprotocol]) -> Subprotocol | None:
    return Subprotocol("realtime.v1") if "realtime.v1" in offered else None


async def main(port: int, source: str) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    feed = relay_script if source == "script" else relay
    relay_task = asyncio.create_task(feed(os.environ["REDIS_URL"]))
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
    parser.add_argument("--source", choices=["raw", "script"], default="raw")
    args = parser.parse_args()
    uvloop.run(main(args.port, args.source))
