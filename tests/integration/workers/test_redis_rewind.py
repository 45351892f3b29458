"""Redis gone back in time (a restart from a stale dump, a promoted replica that missed the last
writes): the relay notices that the server answering did not write the dataset's checkpoint,
and puts back the terminal states recorded as published since, which Redis shows running again
(docs/adr/0011-the-job-row-is-the-outbox.md, "When Redis goes back in time").

The rewind is made on the real Redis with its own commands: ``DUMP`` keeps the exact bytes of
the keys at one moment (what a dump or a lagging replica holds), ``RESTORE … REPLACE`` brings
them back later, and the restored checkpoint names another server's run id, as a dataset that
came from elsewhere does. The full restart from a stale RDB file, with real processes, is in
tests/faults/test_redis_data_loss.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from domains.jobs import services
from domains.jobs.models import Job, JobStatus
from domains.videos.models import Video, VideoStatus
from realtime import clients, store
from realtime.keys import Topic
from realtime.state import Change
from tests.support.members import Member
from tests.support.workers import create_job, job_row
from workers.relay import Relay, RelayTick

pytestmark = pytest.mark.django_db(transaction=True)

OTHER_SERVER = "f" * 40  # a run id this Redis never had


def relay_once() -> RelayTick:
    return Relay(interval=1, batch=2, grace=0).tick()  # batch 2: the restore pages


def running(member: Member) -> Job:
    job = create_job(member, "test.probe")
    claim = services.job_claim(
        member.tenant.id, job_id=job.job_id, lease_owner="test", lease_seconds=60
    )
    assert claim.job is not None
    return job_row(job.job_id)


def finish(member: Member, job: Job, result: object) -> None:
    assert services.job_finish(
        member.tenant.id, job_id=job.job_id, attempt=1, status=JobStatus.DONE, result=result
    )
    assert job_row(job.job_id).terminal_published_at is not None


def raw() -> redis.Redis:
    return clients.sync_redis()


def copy_of(*keys: str) -> Callable[[], None]:
    """Keep the keys as they are now; calling the result brings them back (a stale dump),
    with the checkpoint naming another server."""
    kept = {key: raw().dump(key) for key in keys}
    checkpoint = store.keyspace().checkpoint_key()

    def restore() -> None:
        for key, value in kept.items():
            if value is None:
                raw().delete(key)
            else:
                raw().restore(key, 0, value, replace=True)
        raw().hset(checkpoint, "run_id", OTHER_SERVER)

    return restore


def status_key(member: Member, job: Job) -> str:
    return store.keyspace().status_key(member.tenant.id, Topic.job(job.job_id))


def shown(member: Member, job: Job) -> store.Snapshot:
    snap = store.snapshot(member.tenant.id, Topic.job(job.job_id))
    assert snap is not None
    return snap


def test_finished_jobs_a_rewind_shows_running_again_are_restored_at_a_new_epoch(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given running jobs of two tenants, a relay pass (the checkpoint says this server), and a
    # copy of Redis taken then
    jobs = [(alpha_staff, running(alpha_staff)), (alpha_staff, running(alpha_staff))]
    jobs += [(beta_staff, running(beta_staff))]
    assert relay_once().restored == 0
    checkpoint = store.keyspace().checkpoint_key()
    stale = copy_of(checkpoint, *(status_key(m, j) for m, j in jobs))
    before = {j.job_id: shown(m, j) for m, j in jobs}

    # when the jobs finish (published and recorded), and Redis comes back from the copy
    for n, (member, job) in enumerate(jobs):
        finish(member, job, {"n": n})
    stale()
    assert [shown(m, j).status for m, j in jobs] == ["PROCESSING"] * 3

    # then the relay's next pass restores every one from its record, under its own tenant, at
    # seq 1 of an epoch above the stale one, with its result
    tick = relay_once()
    assert tick.restored == 3
    for n, (member, job) in enumerate(jobs):
        snap = shown(member, job)
        assert (snap.status, snap.seq) == ("DONE", 1)
        assert snap.epoch > before[job.job_id].epoch
        assert json.loads(snap.document)["result"] == {"n": n}
    # and the checkpoint says this server again: the next pass restores nothing
    assert raw().hget(checkpoint, "run_id") != OTHER_SERVER.encode()
    assert relay_once().restored == 0


def test_a_rewind_leaves_alone_terminal_topics_and_jobs_published_before_the_checkpoint(
    alpha_staff: Member, settings: Any
) -> None:
    # given a job published before the relay's checkpoint, then one finished after it and
    # before the copy was taken (so the copy holds its terminal state)
    settings.OUTBOX_REWIND_MARGIN = 0
    older = running(alpha_staff)
    finish(alpha_staff, older, {"older": True})
    time.sleep(0.05)
    relay_once()
    recent = running(alpha_staff)
    finish(alpha_staff, recent, {"recent": True})
    # the older one shows running (broken by hand: a rewind cannot have lost it, the
    # dataset's checkpoint is later than its publish)
    raw().hset(status_key(alpha_staff, older), "status", "PROCESSING")
    checkpoint = store.keyspace().checkpoint_key()
    stale = copy_of(checkpoint, status_key(alpha_staff, older), status_key(alpha_staff, recent))
    kept = (shown(alpha_staff, older), shown(alpha_staff, recent))

    # when Redis comes back from the copy
    stale()

    # then the relay restores neither, and marks the checkpoint
    assert relay_once().restored == 0
    assert (shown(alpha_staff, older), shown(alpha_staff, recent)) == kept
    assert raw().hget(checkpoint, "run_id") != OTHER_SERVER.encode()


def test_the_same_server_answering_is_no_rewind(alpha_staff: Member) -> None:
    # given a job whose Redis state a test makes look running although its record is DONE
    job = running(alpha_staff)
    finish(alpha_staff, job, {"ok": True})
    relay_once()
    raw().hset(status_key(alpha_staff, job), "status", "PROCESSING")

    # when the relay passes with the server that wrote the checkpoint still answering
    tick = relay_once()

    # then it restores nothing (no rewind: only a changed server triggers the restore)
    assert tick.restored == 0
    assert shown(alpha_staff, job).status == "PROCESSING"


def test_a_dataset_without_a_checkpoint_is_no_rewind(alpha_staff: Member) -> None:
    # given a Redis that lost everything (no checkpoint), then a topic shown running
    job = running(alpha_staff)
    finish(alpha_staff, job, {"ok": True})
    raw().delete(store.keyspace().checkpoint_key())
    raw().hset(status_key(alpha_staff, job), "status", "PROCESSING")

    # when the relay passes
    tick = relay_once()

    # then nothing is restored (an empty dataset shows no old state), and a checkpoint exists
    assert tick.restored == 0
    assert raw().hget(store.keyspace().checkpoint_key(), "run_id") is not None


def test_a_cancelled_job_and_a_ready_video_a_rewind_shows_running_are_restored(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given a running job of one tenant and a video encoding in another, each published to
    # Redis as its worker does, a relay pass, and a copy of Redis taken then
    job = running(alpha_staff)
    video = Video.objects.create(
        tenant=beta_staff.tenant,
        session_id=7,
        file_key="k",
        status=VideoStatus.PROCESSING,
        attempt=1,
        created_by=beta_staff.user,
    )
    video_topic = Topic.video(video.video_id)
    store.publish(
        beta_staff.tenant.id,
        video_topic,
        Change(status=VideoStatus.PROCESSING, attempt=1, owner_id=beta_staff.user.id),
    )
    assert relay_once().restored == 0
    checkpoint = store.keyspace().checkpoint_key()
    video_key = store.keyspace().status_key(beta_staff.tenant.id, video_topic)
    stale = copy_of(checkpoint, status_key(alpha_staff, job), video_key)

    # when the job ends CANCELLED and the video READY (records and Redis), and Redis comes
    # back from the copy
    assert services.job_finish(
        alpha_staff.tenant.id, job_id=job.job_id, attempt=1, status=JobStatus.CANCELLED
    )
    video.status, video.hls_path, video.duration = VideoStatus.READY, "v/hls/master.m3u8", 9.5
    video.save()
    store.publish(
        beta_staff.tenant.id,
        video_topic,
        Change(
            status=VideoStatus.READY,
            attempt=1,
            owner_id=beta_staff.user.id,
            hls_path=video.hls_path,
            duration=video.duration,
        ),
    )
    stale()
    video_before = store.snapshot(beta_staff.tenant.id, video_topic)
    assert video_before is not None
    assert (shown(alpha_staff, job).status, video_before.status) == ("PROCESSING", "PROCESSING")

    # then the relay's next pass restores both from their records, each in its own tenant
    assert relay_once().restored == 2
    assert shown(alpha_staff, job).status == "CANCELLED"
    video_after = store.snapshot(beta_staff.tenant.id, video_topic)
    assert video_after is not None
    assert (video_after.status, video_after.seq) == ("READY", 1)
    assert video_after.epoch > video_before.epoch
    assert json.loads(video_after.document)["hls_path"] == "v/hls/master.m3u8"
    assert store.snapshot(alpha_staff.tenant.id, video_topic) is None
