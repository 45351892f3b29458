"""A job's whole life as a browser sees it: POST, then frames over /ws/v1/, then the record."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

from project.asgi import application
from tests.support.members import Member
from tests.support.tokens import make_token
from tests.support.workers import ThreadWorker, client_for

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


async def test_a_posted_job_streams_pending_processing_progress_done_then_shows_its_result(
    alpha_staff: Member, start_worker: Callable[..., ThreadWorker], settings: Any
) -> None:
    # given three batches of two emails, 0.3 s apart, so progress frames are not coalesced away
    settings.MESSAGING_BATCH_SIZE = 2
    settings.MESSAGING_SEND_INTERVAL = 0.3
    client = client_for(alpha_staff)
    recipients = [f"student{i}@example.com" for i in range(6)]
    payload = {"subject": "Exam", "body": "Room 101.", "recipients": recipients}

    # when the job is posted, watched over the WebSocket, and a worker starts
    response = await sync_to_async(client.post)(
        "/api/v1/jobs/", {"job_type": "messaging.send", "payload": payload}, format="json"
    )
    assert response.status_code == 202
    body = response.json()
    token = make_token(
        tenant_id=alpha_staff.tenant.id, user_id=alpha_staff.user.id, role=alpha_staff.role.value
    )
    comm = WebsocketCommunicator(
        application, "/ws/v1/", headers=[ORIGIN], subprotocols=["realtime.v1", f"bearer.{token}"]
    )
    connected, _ = await comm.connect(timeout=3)
    assert connected
    await comm.send_json_to({"type": "subscribe", "topic": body["topic"]})
    frames = [await comm.receive_json_from(3)]
    await sync_to_async(start_worker, thread_sensitive=False)()
    while frames[-1]["status"] not in {"DONE", "FAILED"}:
        frames.append(await comm.receive_json_from(10))
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()
    detail = await sync_to_async(client.get)(body["detail_url"])
    await sync_to_async(connections.close_all)()  # the sync thread's connection

    # then every state arrived in order, with progress in between, and the record agrees
    seqs = [frame["seq"] for frame in frames]
    assert seqs == sorted(set(seqs))
    assert all(frame["type"] == "state" and frame["topic"] == body["topic"] for frame in frames)
    statuses = [frame["status"] for frame in frames]
    assert statuses[0] == "PENDING"
    assert statuses[-1] == "DONE"
    assert "PROCESSING" in statuses
    percents = [
        f["progress"]["percent"] for f in frames if f["progress"] and f["status"] == "PROCESSING"
    ]
    assert percents
    assert percents == sorted(percents)
    assert percents[-1] == 100
    result = {"sent": 6, "failed": 0, "failed_addresses": []}
    assert frames[-1]["result"] == result
    assert frames[-1]["job_type"] == "messaging.send"
    assert detail.status_code == 200
    assert detail.json()["status"] == "DONE"
    assert detail.json()["result"] == result
    assert detail.json()["attempt"] == 1
