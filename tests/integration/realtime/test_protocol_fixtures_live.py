"""The golden fixtures have exactly the shapes the real server produces.

State documents come from ``lua/state.lua`` through the real store and Redis; control frames
from a live consumer over the real ASGI app and channel layer; progress answers from
``realtime.http``. Each must pass ``realtime.protocol``'s checks and carry exactly the key set
of the fixture samples of its kind, so a field added on either side without the other fails.
("unavailable" needs Redis down and is covered by the fixture checks alone.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from django.utils import translation

from project.asgi import application
from realtime import protocol, store
from realtime.clients import sync_redis
from realtime.http import progress_reply
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.support.tokens import ALPHA, make_token

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "protocol"
ORIGIN = (b"origin", b"http://127.0.0.1:8000")
OWNER = 7


def _fixture_samples(pattern: str) -> list[Any]:
    samples: list[Any] = []
    for path in sorted(FIXTURES.glob(pattern)):
        samples += json.loads(path.read_text(encoding="utf-8"))["frames"]
    return samples


def _shape(value: dict[str, Any]) -> tuple[frozenset[str], frozenset[str] | None]:
    """The keys of a document or frame, and of its progress object when it has one."""
    progress = value.get("progress")
    return frozenset(value), frozenset(progress) if isinstance(progress, dict) else None


def _kind(document: dict[str, Any]) -> str:
    return str(document["topic"]).split(":", 1)[0]


def _fixture_shapes(samples: list[Any]) -> dict[tuple[str, str], set[Any]]:
    shapes: dict[tuple[str, str], set[Any]] = {}
    for sample in samples:
        shapes.setdefault((_kind(sample), sample["status"]), set()).add(_shape(sample))
    return shapes


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


def _publish_lives() -> list[Topic]:
    """Topics through every status of both kinds, as the services and workers publish them."""
    job, big, failed = (Topic.job(uuid.uuid4()) for _ in range(3))
    video, broken = Topic.video(uuid.uuid4()), Topic.video(uuid.uuid4())
    progress = Progress(
        percent=42, step="write", step_index=3, step_total=3, step_name_display="x", step_percent=5
    )
    store.publish(ALPHA, job, Change(status="PENDING", attempt=0, owner_id=OWNER, job_type="t"))
    store.publish(ALPHA, job, Change(status="PROCESSING", attempt=1, progress=progress))
    store.publish(ALPHA, big, Change(status="PROCESSING", attempt=1, owner_id=OWNER))
    store.publish(ALPHA, big, Change(status="DONE", result={"rows": "x" * 20_000}))
    store.publish(ALPHA, failed, Change(status="PROCESSING", attempt=1, owner_id=OWNER))
    store.publish(ALPHA, failed, Change(status="FAILED", error="boom"))
    store.publish(ALPHA, video, Change(status="UPLOADED", owner_id=OWNER))
    store.publish(ALPHA, video, Change(status="PROCESSING", progress=Progress(percent=30)))
    store.publish(ALPHA, broken, Change(status="UPLOADED", owner_id=OWNER))
    store.publish(ALPHA, broken, Change(status="FAILED", error="no video stream"))
    uploaded = Topic.video(uuid.uuid4())
    store.publish(ALPHA, uploaded, Change(status="UPLOADED", owner_id=OWNER))
    return [job, big, failed, video, broken, uploaded]


def test_documents_the_script_builds_have_the_fixture_shapes() -> None:
    # given topics in every stage of their lives, and a DONE job with its result inline
    topics = _publish_lives()
    done = Topic.job(uuid.uuid4())
    store.publish(ALPHA, done, Change(status="PROCESSING", attempt=1, owner_id=OWNER))
    store.publish(ALPHA, done, Change(status="DONE", result={"counts": {"created": 1}}))
    ready = Topic.video(uuid.uuid4())
    store.publish(ALPHA, ready, Change(status="PROCESSING", owner_id=OWNER))
    store.publish(ALPHA, ready, Change(status="READY", hls_path="a/master.m3u8", duration=1.5))
    pending = Topic.job(uuid.uuid4())
    store.publish(ALPHA, pending, Change(status="PENDING", owner_id=OWNER, job_type="t"))
    # and a job and a video cancelled while they ran, as the cancel endpoint and the worker do
    cancelled, stopped = Topic.job(uuid.uuid4()), Topic.video(uuid.uuid4())
    store.publish(ALPHA, cancelled, Change(status="PROCESSING", attempt=1, owner_id=OWNER))
    store.publish(ALPHA, cancelled, Change(cancel_requested=True))
    store.publish(ALPHA, cancelled, Change(status="CANCELLED", cancel_requested=True))
    store.publish(ALPHA, stopped, Change(status="PROCESSING", attempt=1, owner_id=OWNER))
    store.publish(ALPHA, stopped, Change(status="CANCELLED", cancel_requested=True))
    expected_documents = _fixture_shapes(_fixture_samples("document-*.json"))
    expected_frames = _fixture_shapes(_fixture_samples("frame-state.json"))

    # when each is read back as the progress endpoint and the WebSocket serve it
    snaps = [
        store.snapshot(ALPHA, topic)
        for topic in [*topics, done, ready, pending, cancelled, stopped]
    ]

    # then documents and state frames pass the checks and have a sampled shape of their status
    seen = set()
    for snap in snaps:
        assert snap is not None
        document, frame = json.loads(snap.document), json.loads(snap.frame)
        assert protocol.check_state_document(document) == []
        assert protocol.check_server_frame(frame) == []
        key = (_kind(document), document["status"])
        seen.add(key)
        assert _shape(document) in expected_documents[key], key
        if key in expected_frames:
            assert _shape(frame) in expected_frames[key], key
    assert seen == set(expected_documents)  # every sampled status was produced live


def test_a_result_too_large_for_redis_keeps_the_sampled_shape() -> None:
    # given a DONE job whose result exceeds the inline limit
    topic = Topic.job(uuid.uuid4())
    store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=1, owner_id=OWNER))

    # when it finishes
    result = store.publish(ALPHA, topic, Change(status="DONE", result={"rows": "x" * 20_000}))

    # then its document says so, with exactly the sampled keys
    document = result.document
    assert document is not None
    assert (document["result"], document["result_in_db"]) == (None, True)
    sampled = [s for s in _fixture_samples("document-job-done.json") if s["result_in_db"]]
    assert {_shape(document)} == {_shape(sample) for sample in sampled}


def test_a_state_rebuilt_from_the_record_keeps_the_sampled_shape() -> None:
    # given a DONE job whose hash Redis lost after it was seen at (epoch, 3)
    topic = Topic.job(uuid.uuid4())
    store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=1, owner_id=OWNER))
    seen = store.publish(ALPHA, topic, Change(progress=Progress(percent=50)))
    store.publish(ALPHA, topic, Change(status="DONE", result={"counts": {"created": 1}}))
    sync_redis().delete(store.keyspace().status_key(ALPHA, topic))
    whole = Change(
        status="DONE", attempt=1, owner_id=OWNER, job_type="t", result={"counts": {"created": 1}}
    )

    # when it is rebuilt from the record
    result = store.rebuild(ALPHA, topic, whole, known=seen.position)

    # then the rebuilt document is a sampled DONE shape, at seq 1 of a larger epoch
    document = result.document
    assert document is not None
    assert protocol.check_state_document(document) == []
    assert (document["seq"], document["epoch"] > seen.epoch) == (1, True)
    sampled = [s for s in _fixture_samples("document-job-done.json") if not s["result_in_db"]]
    assert _shape(document) in {_shape(sample) for sample in sampled}


async def _connect(token: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, "/ws/v1/", headers=[ORIGIN], subprotocols=["realtime.v1", f"bearer.{token}"]
    )
    connected, _subprotocol = await comm.connect(timeout=3)
    assert connected
    return comm


async def _ask(comm: WebsocketCommunicator, frame: dict[str, Any]) -> dict[str, Any]:
    await comm.send_json_to(frame)
    return await comm.receive_json_from(timeout=3)


@override_settings(REALTIME_TOKEN_WARNING=300, REALTIME_MAX_SUBSCRIPTIONS=1)
async def test_control_frames_of_a_live_consumer_have_the_fixture_shapes() -> None:
    # given a topic up to date at seq 1, a free one, and a connection whose token is already
    # inside its warning window (so token_expiring comes first)
    topic, other = Topic.job(uuid.uuid4()), Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=OWNER))
    await store.apublish(ALPHA, other, Change(status="PENDING", owner_id=OWNER))
    stored = await store.asnapshot(ALPHA, topic)
    assert stored is not None
    up_to_date = {"type": "subscribe", "topic": str(topic), "since": 1, "epoch": stored.epoch}
    comm = await _connect(make_token(user_id=OWNER, role="student", lifetime=300))
    try:
        # when it walks through every client frame and every refusal it can provoke
        live = [await comm.receive_json_from(timeout=3)]  # token_expiring
        live.append(await _ask(comm, {"type": "ping"}))
        live.append(await _ask(comm, up_to_date))
        live.append(await _ask(comm, {"type": "subscribe", "topic": str(other)}))  # limit
        live.append(await _ask(comm, {"type": "unsubscribe", "topic": str(topic)}))
        live.append(await _ask(comm, {"type": "subscribe", "topic": f"job:{uuid.uuid4()}"}))
        live.append(await _ask(comm, {"type": "subscribe", "topic": "job:not a uuid"}))
        live.append(await _ask(comm, {"type": "hello"}))
        live.append(await _ask(comm, {"type": "auth", "token": make_token(user_id=OWNER)}))
    finally:
        await comm.disconnect()

    # then each frame passes the checks and has the key set of its fixture samples
    expected: dict[str, set[frozenset[str]]] = {}
    for sample in _fixture_samples("frame-*.json"):
        if sample["type"] != "state":
            expected.setdefault(sample["type"], set()).add(frozenset(sample))
    for frame in live:
        assert protocol.check_server_frame(frame) == [], frame
        assert frozenset(frame) in expected[frame["type"]], frame
    assert {frame["type"] for frame in live} == set(expected)
    codes = {frame["code"] for frame in live if frame["type"] == "error"}
    assert codes == {"not_found", "bad_request", "too_many_subscriptions"}


@override_settings(REALTIME_RATE_BURST=1, REALTIME_RATE_PER_SECOND=0.001)
async def test_a_rate_limited_frame_has_the_sampled_error_shape() -> None:
    # given a connection allowed one frame
    comm = await _connect(make_token())
    try:
        await _ask(comm, {"type": "ping"})

        # when it sends another at once
        frame = await _ask(comm, {"type": "ping"})
    finally:
        await comm.disconnect()

    # then the refusal is a sampled error frame
    sampled = [s for s in _fixture_samples("frame-error.json") if s["code"] == "rate_limited"]
    assert [frame] == sampled


async def test_progress_answers_have_the_sampled_bodies() -> None:
    # given a topic of the caller's, and the sampled answers by status
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=OWNER, job_type="t"))
    sampled: dict[int, Any] = {}
    for answer in _fixture_samples("http-progress.json"):
        sampled.setdefault(answer["status"], answer)  # the first 200 is a job's
    bearer = f"Bearer {make_token(user_id=OWNER, role='student')}"

    # when the endpoint answers it, a topic that does not exist, and a caller without a token
    with translation.override("en"):
        replies = {
            200: await progress_reply(bearer, topic),
            404: await progress_reply(bearer, Topic.job(uuid.uuid4())),
            401: await progress_reply("", topic),
        }

    # then every answer has the status, body keys and own headers of its sample
    for status, reply in replies.items():
        body = json.loads(reply.body)
        assert reply.status == status
        assert frozenset(body) == frozenset(sampled[status]["body"])
        own_headers = {name for name, _value in reply.headers}
        assert own_headers == set(sampled[status]["headers"]) - {"Content-Type"}
    assert json.loads(replies[404].body) == sampled[404]["body"]
    assert json.loads(replies[401].body) == sampled[401]["body"]
