"""Open WebSockets are capped per (tenant, user) (audit F19), against the live consumer through
the production ASGI application, real Redis and the real channel layer. No database access."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from project.asgi import application
from realtime import connections
from tests.support.security import signed_access

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
ALPHA, BETA = 401, 402
USER = 7


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


async def _open(token: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, "/ws/v1/", headers=[ORIGIN], subprotocols=["realtime.v1", f"bearer.{token}"]
    )
    connected, _subprotocol = await comm.connect(timeout=3)
    assert connected
    return comm


async def _pongs(comm: WebsocketCommunicator) -> bool:
    await comm.send_json_to({"type": "ping"})
    return bool((await comm.receive_json_from(3)) == {"type": "pong"})


async def _closed_with(comm: WebsocketCommunicator) -> tuple[int, str]:
    output = await comm.receive_output(timeout=3)
    assert output["type"] == "websocket.close"
    return int(output["code"]), str(output.get("reason", ""))


async def _wait_until(predicate_count: int, tenant_id: int, *, within: float = 10) -> int:
    """Poll the user's open count until it equals ``predicate_count`` (or give up)."""
    deadline = time.monotonic() + within
    count = await connections.open_count(tenant_id, USER)
    while count != predicate_count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        count = await connections.open_count(tenant_id, USER)
    return count


@override_settings(REALTIME_MAX_CONNECTIONS_PER_USER=2)
async def test_F19_a_connection_over_the_per_user_cap_closes_with_4008_and_a_reason() -> None:
    # given: alpha's user 7 has two open connections
    token = signed_access(tenant_id=ALPHA, user_id=USER, role="staff")
    first, second = await _open(token), await _open(token)
    assert await _pongs(first)
    assert await _pongs(second)
    assert await connections.open_count(ALPHA, USER) == 2

    # when: a third opens
    third = await _open(token)

    # then: it is closed at once with 4008 and the reason; the other two still work
    assert await _closed_with(third) == (4008, "too_many_connections")
    assert await _pongs(first)
    assert await connections.open_count(ALPHA, USER) == 2
    await first.disconnect()
    await second.disconnect()


@override_settings(REALTIME_MAX_CONNECTIONS_PER_USER=2)
async def test_F19_beta_user_with_the_same_id_is_counted_apart() -> None:
    # given: alpha's user 7 is at the cap
    alpha = signed_access(tenant_id=ALPHA, user_id=USER, role="staff")
    held = [await _open(alpha), await _open(alpha)]

    # when: beta's user 7 connects
    beta = await _open(signed_access(tenant_id=BETA, user_id=USER, role="staff"))

    # then: beta's connection works
    assert await _pongs(beta)
    assert await connections.open_count(BETA, USER) == 1
    for comm in [*held, beta]:
        await comm.disconnect()


@override_settings(REALTIME_MAX_CONNECTIONS_PER_USER=1)
async def test_F19_a_closed_connection_gives_its_slot_back() -> None:
    # given: the user's one allowed connection, closed by the client
    token = signed_access(tenant_id=ALPHA, user_id=USER, role="staff")
    first = await _open(token)
    assert await _pongs(first)
    await first.disconnect()

    # when: the user connects again
    again = await _open(token)

    # then: accepted; the set holds one connection, not two
    assert await _pongs(again)
    assert await connections.open_count(ALPHA, USER) == 1
    await again.disconnect()
    assert await connections.open_count(ALPHA, USER) == 0


@override_settings(REALTIME_MAX_CONNECTIONS_PER_USER=2, REALTIME_CONNECTION_TTL=1)
async def test_F19_slots_of_a_process_that_died_expire_and_do_not_leak() -> None:
    # given: two slots taken by a process that then died (never released, never refreshed)
    for _ in range(2):
        slot = await connections.acquire(ALPHA, USER)
        assert slot is not None
        connections._registry().live.pop(slot.member)
    token = signed_access(tenant_id=ALPHA, user_id=USER, role="staff")
    refused = await _open(token)
    assert (await _closed_with(refused))[0] == 4008

    # when: their TTL passes without a refresh
    assert await _wait_until(0, ALPHA) == 0

    # then: the user can connect again
    comm = await _open(token)
    assert await _pongs(comm)
    await comm.disconnect()


@override_settings(REALTIME_CONNECTION_TTL=1)
async def test_F19_a_live_connection_is_refreshed_past_its_ttl() -> None:
    # given: one open connection, with slots that expire a second after each refresh
    comm = await _open(signed_access(tenant_id=ALPHA, user_id=USER, role="staff"))
    assert await _pongs(comm)

    # when: three TTLs go by
    await asyncio.sleep(3)

    # then: the process refreshed it: still counted, still working
    assert await connections.open_count(ALPHA, USER) == 1
    assert await _pongs(comm)
    await comm.disconnect()


async def test_F19_an_unauthenticated_handshake_takes_no_slot() -> None:
    # given: a user with no open connection
    # when: a handshake with a bad token
    comm = await _open("not-a-token")

    # then: 4001, and nothing counted for anyone
    assert (await _closed_with(comm))[0] == 4001
    assert await connections.open_count(ALPHA, USER) == 0
