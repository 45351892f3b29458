"""``/ws/v1/`` served by one ASGI callable in front of Channels' router chain (issue 15).

Through project.asgi with real Redis and the real channel layer: the endpoint hands the
consumer the server's own scope (no router or middleware copy of it stays alive per
connection) and the handshake's outcome directly, and leaves every other path to the stock
chain, whose catch-all route refuses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from project.asgi import application
from realtime.auth import SCOPE_KEY
from tests.integration.realtime.ws_support import ORIGIN, connected, consumers
from tests.support.tokens import make_token


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


async def test_the_consumer_of_ws_v1_runs_on_the_servers_scope_with_its_handshake() -> None:
    # given a connection to /ws/v1/ through the project's ASGI application
    async with connected(make_token()) as comm:
        await comm.send_json_to({"type": "ping"})
        assert (await comm.receive_json_from(timeout=3))["type"] == "pong"
        [consumer] = [c for c in consumers() if not c._closed]

        # then the consumer holds the very scope the server passed (no copy), without the
        # middleware's key, and the handshake's caller
        assert consumer.scope is comm.scope
        assert SCOPE_KEY not in consumer.scope
        assert consumer.handshake is not None
        assert consumer.handshake.caller is not None
        assert consumer.handshake.caller.user_id == consumer.caller.user_id


async def test_another_websocket_path_still_goes_to_the_stock_chain_and_is_refused() -> None:
    # given a WebSocket to a path that is not the endpoint's
    comm = WebsocketCommunicator(
        application,
        "/ws/v2/",
        headers=[ORIGIN],
        subprotocols=["realtime.v1", f"bearer.{make_token()}"],
    )

    # then the stock chain's catch-all route refuses the handshake (realtime/routing.py), as
    # it did before the endpoint existed
    accepted, _ = await comm.connect(timeout=3)
    assert accepted is False
    await comm.wait()
    await asyncio.sleep(0)
