"""Rebuilding live state from the database record when Redis forgot it or went back in time.

Real PostgreSQL and Redis, the real ASGI app and consumer: the detail endpoint, the worker's
publishes and the resync sweep each bring a topic Redis lost back to what its record says
(PROTOCOL.md §2), at a new epoch that every watcher takes, and never across tenants.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from domains.jobs import services
from domains.jobs.models import Job, JobResult, JobStatus
from domains.videos.models import Video, VideoStatus
from realtime import rebuild, store
from realtime.clients import sync_redis
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.conftest import Member
from tests.integration.realtime.conftest import ask, make_token, next_frame, open_ws
from tests.integration.workers.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

# The resync sweep runs every few tenths of a second here, so tests wait on frames, not time.
FAST_SWEEP = override_settings(REALTIME_RESYNC_INTERVAL=0.2)


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


@pytest.fixture
def r() -> redis.Redis:
    return sync_redis()


def _job(member: Member, **fields: Any) -> Job:
    return Job.objects.create(
        tenant=member.tenant, job_type="messaging.send", created_by=member.user, **fields
    )


def _forget(r: redis.Redis, tenant_id: int, topic: Topic) -> None:
    space = store.keyspace()
    r.delete(space.status_key(tenant_id, topic), space.progress_key(tenant_id, topic))


def _finish_unpublished(job: Job, result: Any) -> None:
    """The record says DONE but Redis never heard of it (the publish was lost with Redis)."""
    Job.objects.filter(pk=job.pk).update(status=JobStatus.DONE)
    JobResult.objects.create(job=job, data=result)


def _token(member: Member) -> str:
    return make_token(tenant_id=member.tenant.id, user_id=member.user.id, role=member.role.value)


# --- the detail endpoints -----------------------------------------------------------------------
def test_the_detail_endpoint_rebuilds_a_lost_done_job_with_its_result(
    alpha_staff: Member, r: redis.Redis
) -> None:
    # given a DONE job with its result whose live state Redis lost
    job = _job(alpha_staff, status=JobStatus.DONE, attempt=1)
    JobResult.objects.create(job=job, data={"sent": 3})
    topic, tid = Topic.job(job.job_id), alpha_staff.tenant.id
    _forget(r, tid, topic)
    client = client_for(alpha_staff)
    assert client.get(f"/api/v1/jobs/{job.job_id}/progress/").status_code == 404

    # when the client, told 404 by the progress endpoint, reads the record once
    detail = client.get(f"/api/v1/jobs/{job.job_id}/")

    # then Redis holds the terminal state again, complete, and the progress endpoint serves it
    assert detail.status_code == 200
    progress = client.get(f"/api/v1/jobs/{job.job_id}/progress/")
    assert progress.status_code == 200
    document = progress.json()
    assert (document["status"], document["seq"], document["result"]) == ("DONE", 1, {"sent": 3})
    assert (document["job_type"], document["progress"]) == ("messaging.send", None)
    assert document["epoch"] > 0
    status_hash = r.hgetall(store.keyspace().status_key(tid, topic))
    assert (status_hash[b"owner_id"], status_hash[b"attempt"]) == (
        str(alpha_staff.user.id).encode(),
        b"1",
    )


def test_the_video_detail_endpoint_rebuilds_a_lost_ready_video(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given a READY video that Redis holds nothing for
    video = Video.objects.create(
        tenant=alpha_staff.tenant,
        session_id=1,
        file_key="k",
        status=VideoStatus.READY,
        hls_path="tenants/1/videos/x/hls/master.m3u8",
        duration=12.5,
        attempt=1,
        created_by=alpha_staff.user,
    )
    topic = Topic.video(video.video_id)

    # when another tenant and then the owner's tenant read the record
    foreign = client_for(beta_staff).get(f"/media/videos/{video.video_id}/")
    assert store.snapshot(alpha_staff.tenant.id, topic) is None
    own = client_for(alpha_staff).get(f"/media/videos/{video.video_id}/")

    # then only the owner's read rebuilt it, READY with its playlist and duration
    assert (foreign.status_code, own.status_code) == (404, 200)
    snap = store.snapshot(alpha_staff.tenant.id, topic)
    assert snap is not None
    document = json.loads(snap.document)
    assert (document["status"], document["seq"]) == ("READY", 1)
    assert (document["hls_path"], document["duration"]) == (video.hls_path, 12.5)
    assert store.snapshot(beta_staff.tenant.id, topic) is None


def test_the_detail_endpoint_leaves_a_state_redis_holds_alone(alpha_staff: Member) -> None:
    # given a running job whose state Redis holds at seq 2
    job = _job(alpha_staff)
    tid, topic = alpha_staff.tenant.id, Topic.job(job.job_id)
    services.job_claim(tid, job_id=job.job_id, lease_owner="w", lease_seconds=30)
    store.publish(tid, topic, Change(progress=Progress(percent=30)))
    before = store.snapshot(tid, topic)

    # when the record is read
    client_for(alpha_staff).get(f"/api/v1/jobs/{job.job_id}/")

    # then the live state (and its progress) is unchanged
    assert store.snapshot(tid, topic) == before


def test_another_tenant_never_gets_a_rebuild(
    alpha_staff: Member, beta_staff: Member, r: redis.Redis
) -> None:
    # given ALPHA's finished job, lost by Redis
    job = _job(alpha_staff, status=JobStatus.DONE, attempt=1)
    JobResult.objects.create(job=job, data={"sent": 1})
    topic = Topic.job(job.job_id)
    _forget(r, alpha_staff.tenant.id, topic)

    # when BETA reads that job id through the detail endpoint and the rebuild hook
    response = client_for(beta_staff).get(f"/api/v1/jobs/{job.job_id}/")
    rebuilt = rebuild.rebuild_topic(beta_staff.tenant.id, topic)

    # then BETA learns nothing, and no state exists in either tenant
    assert response.status_code == 404
    assert rebuilt is None
    assert store.snapshot(beta_staff.tenant.id, topic) is None
    assert store.snapshot(alpha_staff.tenant.id, topic) is None


# --- the worker ---------------------------------------------------------------------------------
def test_progress_on_a_lost_topic_rebuilds_it_from_the_record_then_applies(
    alpha_staff: Member, r: redis.Redis
) -> None:
    # given a claimed job whose keys Redis lost mid-run
    job = _job(alpha_staff)
    tid, topic = alpha_staff.tenant.id, Topic.job(job.job_id)
    services.job_claim(tid, job_id=job.job_id, lease_owner="w", lease_seconds=30)
    _forget(r, tid, topic)

    # when the worker's throttle publishes its next progress
    result = rebuild.publish_rebuilding(
        tid, topic, Change(progress=Progress(percent=40, step="send"), attempt=1)
    )

    # then the state is back, complete, with the progress on top (rebuilt at seq 1, then 2)
    assert (result.accepted, result.seq) == (True, 2)
    document = result.document
    assert document is not None
    assert (document["status"], document["progress"]["percent"]) == ("PROCESSING", 40)
    assert document["job_type"] == "messaging.send"
    assert r.hget(store.keyspace().status_key(tid, topic), "owner_id") == (
        str(alpha_staff.user.id).encode()
    )


def test_progress_for_a_job_without_record_stays_refused(alpha_staff: Member) -> None:
    # given no job at all under this id
    topic = Topic.job(uuid.uuid4())

    # when progress is published for it
    result = rebuild.publish_rebuilding(
        alpha_staff.tenant.id, topic, Change(progress=Progress(percent=1))
    )

    # then nothing is created
    assert (result.accepted, result.reason) == (False, "not_found")
    assert store.snapshot(alpha_staff.tenant.id, topic) is None


def test_a_claim_and_a_finish_after_a_loss_create_complete_documents(
    alpha_staff: Member, r: redis.Redis
) -> None:
    # given a job whose PENDING state Redis lost before the claim
    job = _job(alpha_staff)
    tid, topic = alpha_staff.tenant.id, Topic.job(job.job_id)
    store.publish(tid, topic, Change(status="PENDING", owner_id=alpha_staff.user.id))
    _forget(r, tid, topic)

    # when the worker claims it, Redis loses it again, and the worker finishes it
    services.job_claim(tid, job_id=job.job_id, lease_owner="w", lease_seconds=30)
    claimed = r.hgetall(store.keyspace().status_key(tid, topic))
    _forget(r, tid, topic)
    services.job_finish(tid, job_id=job.job_id, attempt=1, status="DONE", result={"sent": 2})
    finished = r.hgetall(store.keyspace().status_key(tid, topic))

    # then each publish created a whole state: owner, type, attempt, and the result at the end
    owner = str(alpha_staff.user.id).encode()
    assert (claimed[b"status"], claimed[b"owner_id"], claimed[b"attempt"]) == (
        b"PROCESSING",
        owner,
        b"1",
    )
    assert claimed[b"job_type"] == b"messaging.send"
    assert (finished[b"status"], finished[b"owner_id"], finished[b"job_type"]) == (
        b"DONE",
        owner,
        b"messaging.send",
    )
    assert (finished[b"attempt"], finished[b"result"], finished[b"seq"]) == (
        b"1",
        b'{"sent":2}',
        b"1",
    )
    assert b"epoch" in finished


# --- the resync sweep ---------------------------------------------------------------------------
async def _running_job(member: Member, *, progress_steps: int = 0) -> tuple[Job, Topic]:
    """A claimed job, with a few progress publishes after the claim."""

    def setup() -> tuple[Job, Topic]:
        job = _job(member)
        services.job_claim(member.tenant.id, job_id=job.job_id, lease_owner="w", lease_seconds=60)
        topic = Topic.job(job.job_id)
        for step in range(progress_steps):
            store.publish(member.tenant.id, topic, Change(progress=Progress(percent=step + 1)))
        return job, topic

    return await sync_to_async(setup)()


@FAST_SWEEP
async def test_the_sweep_rebuilds_a_watched_job_whose_keys_vanished(
    alpha_staff: Member, r: redis.Redis
) -> None:
    # given a staff connection watching a running job it was sent (E1, 3) of
    job, topic = await _running_job(alpha_staff, progress_steps=2)
    tid = alpha_staff.tenant.id
    async with open_ws(_token(alpha_staff)) as comm:
        held = await ask(comm, {"type": "subscribe", "topic": str(topic)})
        assert (held["type"], held["seq"]) == ("state", 3)

        # when Redis loses the keys and the job finishes while the publish is lost with them
        _forget(r, tid, topic)
        await sync_to_async(_finish_unpublished)(job, {"sent": 5})
        frame = await next_frame(comm, where=lambda f: f["type"] == "state")

    # then the sweep rebuilt it from the record: the watcher converges on DONE, new epoch
    assert (frame["status"], frame["seq"], frame["result"]) == ("DONE", 1, {"sent": 5})
    assert (frame["epoch"], frame["seq"]) > (held["epoch"], held["seq"])
    snap = store.snapshot(tid, topic)
    assert snap is not None
    assert snap.status == "DONE"


@FAST_SWEEP
async def test_the_sweep_replaces_a_hash_restored_from_an_older_dump(
    alpha_staff: Member, r: redis.Redis
) -> None:
    # given a watched running job at (E1, 4), and a copy of its status hash from seq 1
    tid = alpha_staff.tenant.id
    _job_row, topic = await _running_job(alpha_staff)
    key = store.keyspace().status_key(tid, topic)
    old_copy = r.dump(key)
    for percent in (10, 20, 30):
        store.publish(tid, topic, Change(progress=Progress(percent=percent)))
    async with open_ws(_token(alpha_staff)) as comm:
        held = await ask(comm, {"type": "subscribe", "topic": str(topic)})
        assert held["seq"] == 4

        # when Redis comes back from the older dump (same epoch, lower seq)
        r.restore(key, 0, old_copy, replace=True)  # type: ignore[arg-type]
        frame = await next_frame(comm, where=lambda f: f["type"] == "state")

    # then the sweep saw the regression and rebuilt the job from its record at a new epoch
    assert (frame["status"], frame["seq"]) == ("PROCESSING", 1)
    assert frame["epoch"] > held["epoch"]
    stored = r.hmget(key, "epoch", "seq")
    assert (int(stored[0]), int(stored[1])) == (frame["epoch"], 1)  # type: ignore[arg-type]


@FAST_SWEEP
async def test_a_client_ahead_of_redis_on_subscribe_gets_the_rebuilt_state(
    alpha_staff: Member,
) -> None:
    # given a running job stored at (E1, 1), and a client that reconnects holding (E1, 9)
    _job_row, topic = await _running_job(alpha_staff)
    stored = store.snapshot(alpha_staff.tenant.id, topic)
    assert stored is not None
    async with open_ws(_token(alpha_staff)) as comm:
        # when it subscribes with what it holds
        answer = await ask(
            comm, {"type": "subscribe", "topic": str(topic), "since": 9, "epoch": stored.epoch}
        )
        frame = await next_frame(comm, where=lambda f: f["type"] == "state")

    # then it is told what Redis holds, and then given the state rebuilt above its own
    assert answer == {
        "type": "subscribed",
        "topic": str(topic),
        "seq": 1,
        "epoch": stored.epoch,
    }
    assert (frame["status"], frame["seq"]) == ("PROCESSING", 1)
    assert frame["epoch"] > stored.epoch


@FAST_SWEEP
async def test_the_sweep_rebuilds_only_in_the_watchers_tenant(
    alpha_staff: Member, beta_staff: Member, r: redis.Redis
) -> None:
    # given BETA watching its own running job, and ALPHA's job of the same kind, both lost
    _beta_job, beta_topic = await _running_job(beta_staff)
    _alpha_job, alpha_topic = await _running_job(alpha_staff)
    async with open_ws(_token(beta_staff)) as comm:
        await ask(comm, {"type": "subscribe", "topic": str(beta_topic)})
        _forget(r, beta_staff.tenant.id, beta_topic)
        _forget(r, alpha_staff.tenant.id, alpha_topic)

        # when the sweep repairs BETA's watched topic
        frame = await next_frame(comm, where=lambda f: f["type"] == "state")

    # then BETA got its own job back, and ALPHA's topic (watched by nobody) stays absent
    assert frame["topic"] == str(beta_topic)
    assert store.snapshot(beta_staff.tenant.id, beta_topic) is not None
    assert store.snapshot(alpha_staff.tenant.id, alpha_topic) is None
    assert store.snapshot(beta_staff.tenant.id, alpha_topic) is None
