"""A client that stops reading: progress is coalesced, the terminal state still arrives, and a
connection that cannot drain is closed instead of buffering without bound.

The consumer is driven as a raw ASGI app whose ``send`` blocks while the "client" is not
reading, which is what a full TCP window does to a server that applies backpressure.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.layers import get_channel_layer
from django.test import override_settings

from project.asgi import application
from realtime import store
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.support.tokens import ALPHA, make_token


class SlowClient:
    def __init__(self, token: str) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.accepted = asyncio.Event()
        self.scope = {
            "type": "websocket",
            "path": "/ws/v1/",
            "raw_path": b"/ws/v1/",
            "query_string": b"",
            "headers": [(b"origin", b"http://127.0.0.1:8000")],
            "subprotocols": ["realtime.v1", f"bearer.{token}"],
        }

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.accept":
            self.accepted.set()
        elif message["type"] == "websocket.send":
            await self.reading.wait()
        self.sent.append(message)

    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]


async def _run(client: SlowClient) -> asyncio.Task[None]:
    task = asyncio.create_task(application(client.scope, client.receive, client.send))
    await client.inbox.put({"type": "websocket.connect"})
    await asyncio.wait_for(client.accepted.wait(), 3)
    return task


async def _until(predicate: Any, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_slow_client_gets_coalesced_progress_and_always_the_terminal_state(
    topic: Topic,
) -> None:
    # given a client subscribed to a running job
    await store.apublish(ALPHA, topic, Change(status="PROCESSING", owner_id=7, attempt=1))
    client = SlowClient(make_token())
    task = await _run(client)
    try:
        await client.inbox.put(
            {
                "type": "websocket.receive",
                "text": json.dumps({"type": "subscribe", "topic": str(topic)}),
            }
        )
        await _until(lambda: len(client.frames()) == 1)

        # when it stops reading while 60 progress changes and DONE arrive, then reads again
        client.reading.clear()  # the client stops reading
        await client.inbox.put(
            {"type": "websocket.receive", "text": '{"type": "ping"}'}
        )  # blocks a send
        for percent in range(1, 61):
            await store.apublish(ALPHA, topic, Change(progress=Progress(percent=percent)))
        await store.apublish(ALPHA, topic, Change(status="DONE", result={"ok": True}))
        await asyncio.sleep(0.5)
        client.reading.set()  # it reads again

        await _until(lambda: any(f.get("status") == "DONE" for f in client.frames()))
    finally:
        await client.inbox.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, 3)
        await get_channel_layer().flush()

    # then it gets few, strictly ordered states, the last one DONE
    states = [f for f in client.frames() if f["type"] == "state"]
    seqs = [f["seq"] for f in states]
    assert seqs == sorted(set(seqs))  # strictly increasing
    assert states[-1]["status"] == "DONE"
    assert states[-1]["seq"] == 62
    assert len(states) < 20  # 61 changes arrived while blocked; most were coalesced


@override_settings(REALTIME_SEND_TIMEOUT=0.5, REALTIME_RESYNC_INTERVAL=0.3)
async def test_a_connection_that_cannot_drain_is_closed(topic: Topic) -> None:
    # given a client subscribed to a running job, with a short send timeout
    await store.apublish(ALPHA, topic, Change(status="PROCESSING", owner_id=7, attempt=1))
    client = SlowClient(make_token())
    task = await _run(client)
    try:
        await client.inbox.put(
            {
                "type": "websocket.receive",
                "text": json.dumps({"type": "subscribe", "topic": str(topic)}),
            }
        )
        await _until(lambda: len(client.frames()) == 1)

        # when it never reads again and a change arrives
        client.reading.clear()  # never reads again

        await store.apublish(ALPHA, topic, Change(progress=Progress(percent=5)))
        await _until(lambda: any(m["type"] == "websocket.close" for m in client.sent), timeout=5)
    finally:
        client.reading.set()
        await client.inbox.put({"type": "websocket.disconnect", "code": 4008})
        await asyncio.wait_for(task, 3)
        await get_channel_layer().flush()

    # then the connection is closed with 4008
    close = next(m for m in client.sent if m["type"] == "websocket.close")
    assert close["code"] == 4008
