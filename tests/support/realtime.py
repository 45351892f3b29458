"""Realtime helpers: a raw Redis listener on a group channel, WebSocket clients on /ws/v1/ and
the frames they send and receive."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import redis
from channels.testing import WebsocketCommunicator

from project.asgi import application
from realtime.keys import Topic

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


class GroupListener:
    """A raw Redis subscriber on a topic's group channel: sees exactly what the script PUBLISHes."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.pubsub.get_message(timeout=1)  # the subscribe confirmation

    def messages(self, wait: float = 0.3) -> list[dict[str, Any]]:
        received, deadline = [], time.monotonic() + wait
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.05)
            if message is not None:
                received.append(msgpack.unpackb(message["data"], raw=False))
        return received


@asynccontextmanager
async def ws(
    token: str | None = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str = "/ws/v1/",
    subprotocols: list[str] | None = None,
) -> AsyncIterator[WebsocketCommunicator]:
    if subprotocols is None:
        subprotocols = ["realtime.v1", f"bearer.{token}"] if token else ["realtime.v1"]
    comm = WebsocketCommunicator(
        application,
        path,
        headers=[ORIGIN] if headers is None else headers,
        subprotocols=subprotocols,
    )
    connected, subprotocol = await comm.connect(timeout=3)
    assert connected
    assert subprotocol == "realtime.v1"
    try:
        yield comm
    finally:
        await comm.disconnect()


async def recv(comm: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    return await comm.receive_json_from(timeout)  # type: ignore[no-any-return]


async def subscribe(comm: WebsocketCommunicator, topic: Topic, **extra: Any) -> dict[str, Any]:
    await comm.send_json_to({"type": "subscribe", "topic": str(topic), **extra})
    return await recv(comm)


@asynccontextmanager
async def open_ws(token: str) -> AsyncIterator[WebsocketCommunicator]:
    """A connected ``/ws/v1/`` client with ``token`` as its bearer subprotocol."""
    comm = WebsocketCommunicator(
        application,
        "/ws/v1/",
        headers=[(b"origin", b"http://127.0.0.1:8000")],
        subprotocols=["realtime.v1", f"bearer.{token}"],
    )
    connected, _subprotocol = await comm.connect(timeout=3)
    assert connected
    try:
        yield comm
    finally:
        await comm.disconnect()


async def ask(comm: WebsocketCommunicator, frame: dict[str, Any]) -> dict[str, Any]:
    """Send a client frame and return the next server frame."""
    await comm.send_json_to(frame)
    return await comm.receive_json_from(timeout=3)  # type: ignore[no-any-return]


async def next_frame(
    comm: WebsocketCommunicator, *, within: float = 10, where: Any = None
) -> dict[str, Any]:
    """The next server frame (the next one for which ``where(frame)`` holds, if given)."""
    while True:
        frame: dict[str, Any] = await comm.receive_json_from(timeout=within)
        if where is None or where(frame):
            return frame
