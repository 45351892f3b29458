"""The lifecycle transitions a worker makes, against the real database and Redis.

Claim and finish are fenced by the attempt: these tests are the contract the runner rests on.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from domains.jobs import services
from domains.jobs.models import Job, JobResult
from domains.jobs.services import ClaimResult
from realtime import store
from realtime.clients import sync_redis
from realtime.keys import Topic
from realtime.state import Change
from tests.conftest import Member
from tests.integration.workers.conftest import client_for


def _job(member: Member, **fields: object) -> Job:
    return Job.objects.create(
        tenant=member.tenant, job_type="messaging.send", created_by=member.user, **fields
    )


def _claim(job: Job, *, lease: float = 30, owner: str = "w1") -> services.Claim:
    return services.job_claim(
        job.tenant_id, job_id=job.job_id, lease_owner=owner, lease_seconds=lease
    )


def test_a_claim_starts_an_attempt_with_a_lease(alpha_staff: Member) -> None:
    job = _job(alpha_staff, payload={"x": 1})

    claim = _claim(job, lease=30)

    assert claim.result is ClaimResult.CLAIMED
    assert claim.job is not None
    assert (claim.job.attempt, claim.job.payload, claim.job.owner_id) == (
        1,
        {"x": 1},
        alpha_staff.user.id,
    )
    job.refresh_from_db()
    assert (job.status, job.attempt, job.lease_owner) == ("PROCESSING", 1, "w1")
    assert job.lease_expires_at is not None
    assert job.started_at is not None
    assert 29 < (job.lease_expires_at - job.started_at).total_seconds() <= 30


def test_a_live_lease_makes_the_job_busy_and_an_expired_one_lets_the_next_attempt_in(
    alpha_staff: Member,
) -> None:
    job = _job(alpha_staff)
    _claim(job, lease=1, owner="w1")

    busy = _claim(job, owner="w2")
    time.sleep(1.1)
    taken = _claim(job, owner="w2")

    assert busy.result is ClaimResult.BUSY
    assert 0 < busy.lease_remaining <= 1
    assert taken.result is ClaimResult.CLAIMED
    assert taken.job is not None
    assert taken.job.attempt == 2


def test_a_superseded_attempt_cannot_finish_or_extend_its_lease(alpha_staff: Member) -> None:
    job = _job(alpha_staff)
    _claim(job, lease=0.2, owner="zombie")
    time.sleep(0.3)
    _claim(job, owner="successor")
    tid = alpha_staff.tenant.id

    extended = services.job_lease_extend(tid, job_id=job.job_id, attempt=1, lease_seconds=30)
    zombie = services.job_finish(
        tid, job_id=job.job_id, attempt=1, status="DONE", result={"by": "zombie"}
    )
    successor = services.job_finish(
        tid, job_id=job.job_id, attempt=2, status="DONE", result={"by": "successor"}
    )
    again = services.job_finish(tid, job_id=job.job_id, attempt=2, status="FAILED", error="late")

    assert (extended, zombie, successor, again) == (False, False, True, False)
    job.refresh_from_db()
    assert (job.status, job.attempt, job.error) == ("DONE", 2, "")
    assert JobResult.objects.get(job=job).data == {"by": "successor"}


def test_a_finished_job_is_not_claimed_again_and_its_state_is_republished(
    alpha_staff: Member, django_capture_on_commit_callbacks: Any
) -> None:
    job = _job(alpha_staff)
    _claim(job)
    tid = alpha_staff.tenant.id
    services.job_finish(tid, job_id=job.job_id, attempt=1, status="DONE", result={"sent": 2})
    topic = Topic.job(job.job_id)
    sync_redis().delete(*[store.keyspace().status_key(tid, topic)])  # the DONE publish was lost

    with django_capture_on_commit_callbacks(execute=True):
        claim = _claim(job, owner="w2")

    assert claim.result is ClaimResult.FINISHED
    job.refresh_from_db()
    assert job.attempt == 1
    snap = store.snapshot(tid, topic)
    assert snap is not None
    assert snap.status == "DONE"
    assert snap.owner_id == alpha_staff.user.id
    assert '"result":{"sent":2}' in snap.document


def test_a_message_naming_another_tenant_claims_nothing(
    alpha_staff: Member, beta_staff: Member
) -> None:
    job = _job(alpha_staff)

    claim = services.job_claim(
        beta_staff.tenant.id, job_id=job.job_id, lease_owner="w", lease_seconds=30
    )

    assert claim.result is ClaimResult.MISSING
    job.refresh_from_db()
    assert (job.status, job.attempt) == ("PENDING", 0)


def test_a_released_lease_lets_the_next_attempt_claim_at_once(alpha_staff: Member) -> None:
    job = _job(alpha_staff)
    _claim(job, lease=300)

    released = services.job_lease_release(alpha_staff.tenant.id, job_id=job.job_id, attempt=1)
    claim = _claim(job, owner="w2")

    assert released is True
    assert claim.result is ClaimResult.CLAIMED


def test_a_dead_lettered_job_fails_unless_it_is_finished_or_still_leased(
    alpha_staff: Member,
) -> None:
    tid = alpha_staff.tenant.id
    abandoned, leased, done = _job(alpha_staff), _job(alpha_staff), _job(alpha_staff)
    _claim(abandoned, lease=0.1)
    _claim(leased, lease=300)
    _claim(done)
    services.job_finish(tid, job_id=done.job_id, attempt=1, status="DONE", result={})
    time.sleep(0.2)

    outcomes = [
        services.job_fail_dead_lettered(tid, job_id=job.job_id) for job in (abandoned, leased, done)
    ]

    assert outcomes == [True, False, False]
    statuses = [Job.objects.get(pk=j.pk).status for j in (abandoned, leased, done)]
    assert statuses == ["FAILED", "PROCESSING", "DONE"]


def test_reading_a_finished_job_repairs_a_stale_live_state(alpha_staff: Member) -> None:
    job = _job(alpha_staff)
    _claim(job)
    tid = alpha_staff.tenant.id
    services.job_finish(tid, job_id=job.job_id, attempt=1, status="DONE", result={"sent": 1})
    topic = Topic.job(job.job_id)
    sync_redis().delete(store.keyspace().status_key(tid, topic))
    # Redis came back with the job still PROCESSING (the DONE publish was lost in between).
    store.publish(tid, topic, Change(status="PROCESSING", attempt=1, owner_id=alpha_staff.user.id))

    response = client_for(alpha_staff).get(f"/api/v1/jobs/{job.job_id}/")

    assert response.status_code == 200
    snap = store.snapshot(tid, topic)
    assert snap is not None
    assert snap.status == "DONE"


def test_claiming_an_unknown_job_is_missing(alpha_staff: Member) -> None:
    claim = services.job_claim(
        alpha_staff.tenant.id, job_id=uuid.uuid4(), lease_owner="w", lease_seconds=30
    )

    assert claim.result is ClaimResult.MISSING
