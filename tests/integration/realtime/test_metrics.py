"""The ASGI processes' metrics after real work: a WebSocket session through the real consumer,
channel layer and Redis script, and progress polls; then ``GET /metrics`` and who may read it.

Values are read from this process's registry (no PROMETHEUS_MULTIPROC_DIR in the test
process); tests/scale/test_metrics_scrape.py scrapes real server and worker processes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.test import AsyncClient, override_settings

from project.asgi import application
from realtime import store
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.support.metrics import parse, sample, value
from tests.support.realtime import recv, subscribe, ws
from tests.support.tokens import ALPHA, BETA, make_token


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


async def _get(
    path: str, *, client: tuple[str, int] = ("127.0.0.1", 50000), **headers: str
) -> tuple[int, bytes]:
    """One HTTP request through the whole ASGI app, as uvicorn would pass it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": headers.pop("method", "GET"),
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")]
        + [(name.replace("_", "-").lower().encode(), v.encode()) for name, v in headers.items()],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), body


async def test_a_websocket_session_shows_in_connections_frames_lag_and_closes() -> None:
    # given a running job and the counters before
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    before = {
        name: sample(name)
        for name in (
            "academy_ws_frames_sent_total",
            "academy_publish_deliver_lag_seconds_count",
            "academy_ws_connections_opened_total",
            "academy_ws_connections",
            "academy_ws_subscriptions",
        )
    }
    closes_before = sample("academy_ws_closes_total", code="1000")

    # when a client subscribes, three changes are published, and it closes normally
    async with ws(make_token()) as comm:
        assert (await subscribe(comm, topic))["seq"] == 1
        during = (sample("academy_ws_connections"), sample("academy_ws_subscriptions"))
        for change in (
            Change(status="PROCESSING", attempt=1),
            Change(progress=Progress(percent=50)),
            Change(status="DONE", result={"sent": 2}),
        ):
            await store.apublish(ALPHA, topic, change)
            await recv(comm)
    await asyncio.sleep(0.05)

    # then the connection and its subscription were counted while open and not after
    assert during == (before["academy_ws_connections"] + 1, before["academy_ws_subscriptions"] + 1)
    assert sample("academy_ws_connections") == before["academy_ws_connections"]
    assert sample("academy_ws_subscriptions") == before["academy_ws_subscriptions"]
    assert (
        sample("academy_ws_connections_opened_total")
        == before["academy_ws_connections_opened_total"] + 1
    )
    # four frames (the snapshot and three changes), three of them through the layer with a lag
    assert sample("academy_ws_frames_sent_total") == before["academy_ws_frames_sent_total"] + 4
    lags = sample("academy_publish_deliver_lag_seconds_count")
    assert lags == before["academy_publish_deliver_lag_seconds_count"] + 3
    assert sample("academy_publish_deliver_lag_seconds_bucket", le="+Inf") >= lags
    assert sample("academy_ws_closes_total", code="1000") == closes_before + 1


async def test_a_refused_handshake_is_counted_under_its_close_code() -> None:
    # given the count of 4001 closes
    before = sample("academy_ws_closes_total", code="4001")

    # when a client connects with a token that is not one
    async with ws("not-a-token") as comm:
        output = await comm.receive_output(timeout=3)
    assert (output["type"], output["code"]) == ("websocket.close", 4001)

    # then it is counted once under 4001
    await asyncio.sleep(0.05)
    assert sample("academy_ws_closes_total", code="4001") == before + 1


@pytest.mark.django_db
async def test_progress_polls_are_counted_by_kind_and_outcome_never_by_id() -> None:
    # given a running and a finished job of alpha
    running, finished = Topic.job(uuid.uuid4()), Topic.job(uuid.uuid4())
    for topic in (running, finished):
        await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    await store.apublish(ALPHA, finished, Change(status="DONE", result={"ok": True}))
    outcomes = ("running", "terminal", "not_found", "unauthenticated")
    before = {o: sample("academy_progress_requests_total", kind="job", outcome=o) for o in outcomes}
    alpha = {"authorization": f"Bearer {make_token()}"}
    beta = {"authorization": f"Bearer {make_token(tenant_id=BETA)}"}

    # when alpha polls both twice, beta polls alpha's job, and a poll comes without a token
    client = AsyncClient()
    for _ in range(2):
        for topic in (running, finished):
            assert (
                await client.get(f"/api/v1/jobs/{topic.id}/progress/", headers=alpha)
            ).status_code == 200
    assert (
        await client.get(f"/api/v1/jobs/{running.id}/progress/", headers=beta)
    ).status_code == 404
    assert (await client.get(f"/api/v1/jobs/{running.id}/progress/")).status_code == 401

    # then each poll is counted once under its outcome: the fallback polls are the running ones
    after = {o: sample("academy_progress_requests_total", kind="job", outcome=o) for o in outcomes}
    assert {o: after[o] - before[o] for o in outcomes} == {
        "running": 2,
        "terminal": 2,
        "not_found": 1,
        "unauthenticated": 1,
    }
    # and the exposition names neither a job nor a tenant
    status, body = await _get("/metrics")
    assert status == 200
    text = body.decode()
    for id_ in (str(running.id), str(finished.id), f'tenant="{ALPHA}"', f'tenant="{BETA}"'):
        assert id_ not in text
    assert (
        value(parse(text), "academy_progress_requests_total", kind="job", outcome="running")
        == after["running"]
    )


async def test_metrics_are_served_to_loopback_scrapers_only() -> None:
    # given the default settings (enabled, loopback only, no token)
    # when the host's agent, another host, and a request through the proxy ask for them
    local = await _get("/metrics")
    remote = await _get("/metrics", client=("10.1.2.3", 40000))
    proxied = await _get("/metrics", x_forwarded_for="203.0.113.9")
    posted = await _get("/metrics", method="POST")

    # then only the agent gets the exposition; the others get a plain 404
    assert local[0] == 200
    assert b"# TYPE academy_ws_connections gauge" in local[1]
    assert [remote[0], proxied[0], posted[0]] == [404, 404, 404]
    assert b"academy_" not in remote[1] + proxied[1] + posted[1]


@override_settings(METRICS_TOKEN="s3cret-scrape-token")
async def test_with_a_token_set_a_scraper_must_send_it() -> None:
    # given a token required for scrapes (override_settings)
    # when the agent asks without it, with a wrong one, and with it
    missing = await _get("/metrics")
    wrong = await _get("/metrics", authorization="Bearer nope")
    right = await _get("/metrics", authorization="Bearer s3cret-scrape-token")

    # then only the right token is let in
    assert (missing[0], wrong[0], right[0]) == (404, 404, 200)


@override_settings(METRICS_ENABLED=False)
async def test_disabled_metrics_are_not_served_at_all() -> None:
    # given metrics disabled (override_settings)
    # when the host's agent asks
    status, body = await _get("/metrics")

    # then the answer is 404
    assert status == 404
    assert b"academy_" not in body


@override_settings(METRICS_ALLOWED_NETWORKS=["10.77.0.0/24"])
async def test_the_allowed_networks_are_a_setting() -> None:
    # given a private network allowed instead of loopback (override_settings)
    # when a peer inside it and the loopback agent ask
    inside = await _get("/metrics", client=("10.77.0.5", 40000))
    loopback = await _get("/metrics")

    # then the setting decides
    assert (inside[0], loopback[0]) == (200, 404)
