from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest
import redis
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from project.asgi import application
from realtime import store
from realtime.clients import sync_redis
from realtime.keys import Topic

ALPHA, BETA = 101, 202  # tenant ids: these tests need no database rows


def make_token(
    *, tenant_id: int = ALPHA, user_id: int = 7, role: str = "staff", lifetime: float = 300
) -> str:
    """A signed access token as the token endpoint issues it, without touching the database."""
    token = AccessToken()
    token["user_id"] = user_id
    token["tenant_id"] = tenant_id
    token["role"] = role
    token.set_exp(lifetime=__import__("datetime").timedelta(seconds=lifetime))
    return str(token)


@pytest.fixture
def topic() -> Topic:
    return Topic.job(uuid.uuid4())


@pytest.fixture
def r() -> redis.Redis:
    return sync_redis()


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


@pytest.fixture
def listen(r: redis.Redis) -> Iterator[Any]:
    listeners: list[GroupListener] = []

    def _listen(tenant_id: int, topic: Topic) -> GroupListener:
        listener = GroupListener(r, store.keyspace().group_channel(tenant_id, topic))
        listeners.append(listener)
        return listener

    yield _listen
    for listener in listeners:
        listener.pubsub.close()


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
