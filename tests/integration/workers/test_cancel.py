"""Cancelling jobs (PROTOCOL.md §2, §5): ``POST /api/v1/jobs/{id}/cancel/`` end to end.

Real PostgreSQL, Redis and moto's SQS; workers in threads with second-scale timings. A PENDING
job ends CANCELLED without running; a running one is stopped by its worker, which sees the
request within one heartbeat (from the database) or sooner (from Redis), before its next unit
of work; its terminal state goes through the outbox like every other.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from domains.jobs.dispatch import QueueKind
from domains.jobs.models import Job, JobResult
from domains.jobs.uploads import imports_bucket_ensure
from domains.students.models import Student
from domains.tenants.models import Tenant
from realtime import store
from realtime.clients import sync_redis
from realtime.identity import Role
from realtime.keys import Topic
from tests.support.handlers import Gate, PausingHandler
from tests.support.members import Member, member_of
from tests.support.workbooks import large_xlsx_bytes
from tests.support.workers import (
    Outage,
    ThreadWorker,
    client_for,
    create_job,
    fast_config,
    job_row,
    queue_counts,
    thread_worker,
    wait_for,
)
from workers.config import queue_config
from workers.handlers.excel_import import ExcelImportHandler
from workers.handlers.messaging import MessagingSendHandler
from workers.relay import Relay

pytestmark = pytest.mark.django_db(transaction=True)

RECIPIENTS = [f"parent{i}@example.com" for i in range(5)]


def cancel(member: Member, job_id: uuid.UUID | str) -> Any:
    return client_for(member).post(f"/api/v1/jobs/{job_id}/cancel/")


def snapshot(job: Job) -> dict[str, Any]:
    snap = store.snapshot(job.tenant_id, Topic.job(job.job_id))
    assert snap is not None
    document: dict[str, Any] = json.loads(snap.document)
    return document


def ended(job: Job, *, timeout: float = 20) -> Job:
    wait_for(lambda: job_row(job.job_id).status in {"DONE", "FAILED", "CANCELLED"}, timeout=timeout)
    return job_row(job.job_id)


@pytest.fixture
def alpha_teacher(alpha: Tenant) -> Member:
    return member_of(alpha, "alpha-teacher", Role.TEACHER)


# --- PENDING ----------------------------------------------------------------------------------
def test_a_pending_job_is_cancelled_at_once_and_a_worker_drops_its_message_unrun(
    alpha_staff: Member, start_worker: Callable[..., ThreadWorker]
) -> None:
    # given a job queued with no worker running
    job = create_job(alpha_staff, "test.gate")
    assert queue_counts(QueueKind.MESSAGING) == (1, 0)

    # when its creator cancels it
    response = cancel(alpha_staff, job.job_id)

    # then the answer is its state: CANCELLED with the request recorded, seq 2 after PENDING
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["topic"], body["status"], body["seq"]) == (f"job:{job.job_id}", "CANCELLED", 2)
    assert body["cancel_requested"] is True
    assert body["progress"] is None
    # and the record is CANCELLED, finished, its terminal state recorded as published
    row = job_row(job.job_id)
    assert (row.status, row.cancel_requested, row.attempt) == ("CANCELLED", True, 0)
    assert row.finished_at is not None
    assert row.terminal_published_at is not None
    assert snapshot(job)["status"] == "CANCELLED"

    # when a worker receives its message
    gate = Gate()
    holder = start_worker({"test.gate": gate})
    wait_for(lambda: holder.worker.stats.duplicates == 1)

    # then the message is deleted and the handler never ran: the job stays CANCELLED
    wait_for(lambda: queue_counts(QueueKind.MESSAGING) == (0, 0))
    assert gate.calls.started == []
    assert job_row(job.job_id).status == "CANCELLED"
    assert job_row(job.job_id).attempt == 0


# --- running jobs -----------------------------------------------------------------------------
@override_settings(MESSAGING_BATCH_SIZE=2)
def test_a_message_being_sent_stops_before_its_next_batch(
    alpha_staff: Member, start_worker: Callable[..., ThreadWorker]
) -> None:
    # given a messaging job of three batches whose worker is held right after the first batch
    handler = PausingHandler(MessagingSendHandler(), pause_when=lambda f: f["step_index"] == 1)
    holder = start_worker({"messaging.send": handler})
    job = create_job(
        alpha_staff,
        "messaging.send",
        {"subject": "Closed", "body": "No class today.", "recipients": RECIPIENTS},
    )
    assert handler.reached.wait(20)

    # when a cancel is requested while the first batch's progress is being reported
    response = cancel(alpha_staff, job.job_id)

    # then the answer shows the running job with the request recorded
    assert response.status_code == 202, response.json()
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("PROCESSING", True)
    # and the worker ends it CANCELLED: the first batch stays sent, no later batch goes out
    assert ended(job).status == "CANCELLED"
    assert sorted(message.to[0] for message in mail.outbox) == RECIPIENTS[:2]
    assert not JobResult.objects.filter(job__job_id=job.job_id).exists()
    # through the finishing path: published and recorded so, the message deleted
    wait_for(lambda: job_row(job.job_id).terminal_published_at is not None)
    state = snapshot(job)
    assert (state["status"], state["cancel_requested"], state["progress"]) == (
        "CANCELLED",
        True,
        None,
    )
    wait_for(lambda: queue_counts(QueueKind.MESSAGING) == (0, 0))
    assert holder.worker.stats.cancelled == 1


def test_the_worker_sees_the_request_from_the_database_when_redis_lost_it(
    alpha_staff: Member, start_worker: Callable[..., ThreadWorker]
) -> None:
    # given a running job whose worker reads no flag from Redis (only its heartbeat's)
    gate = Gate()
    holder = start_worker({"test.gate": gate}, cancel_check_interval=0)
    job = create_job(alpha_staff, "test.gate")
    assert gate.running.wait(10)

    # when a cancel is requested and Redis then loses the flag
    assert cancel(alpha_staff, job.job_id).status_code == 202
    status_key = store.keyspace().status_key(job.tenant_id, Topic.job(job.job_id))
    sync_redis().hdel(status_key, "cancel_requested")
    beats = holder.worker.stats.heartbeats

    # then the next heartbeat (1 s) reads it from the record and the job ends CANCELLED
    assert ended(job).status == "CANCELLED"
    assert holder.worker.stats.heartbeats > beats
    assert gate.calls.ended == []  # stopped by the request, never released
    assert snapshot(job)["status"] == "CANCELLED"


def test_the_worker_sees_the_request_from_redis_before_any_heartbeat(
    alpha_staff: Member, start_worker: Callable[..., ThreadWorker]
) -> None:
    # given a running job whose heartbeat is far off (15 s) and a Redis check every 0.2 s
    config = fast_config(visibility_timeout=40, lease_seconds=30, heartbeat_interval=15)
    gate = Gate()
    holder = start_worker({"test.gate": gate}, config=config, cancel_check_interval=0.2)
    job = create_job(alpha_staff, "test.gate")
    assert gate.running.wait(10)

    # when a cancel is requested
    assert cancel(alpha_staff, job.job_id).status_code == 202

    # then the job ends CANCELLED without a single heartbeat
    assert ended(job, timeout=10).status == "CANCELLED"
    assert holder.worker.stats.heartbeats == 0


def test_a_repeated_cancel_is_harmless_and_an_ended_job_answers_409(
    alpha_staff: Member, start_worker: Callable[..., ThreadWorker]
) -> None:
    # given a running job whose handler is held until the test lets it go
    handler = PausingHandler(Gate(), pause_when=lambda f: True, hold=True)
    start_worker({"test.gate": handler})
    job = create_job(alpha_staff, "test.gate")
    assert handler.reached.wait(10)
    assert handler.release is not None

    # when the cancel is sent twice while it runs
    first, second = cancel(alpha_staff, job.job_id), cancel(alpha_staff, job.job_id)

    # then both answer 202 with the same state: the second changed nothing
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json() == second.json()
    assert first.json()["cancel_requested"] is True
    assert job_row(job.job_id).status == "PROCESSING"

    # when the handler goes on, the job ends CANCELLED, and the cancel comes once more
    handler.release.set()
    assert ended(job).status == "CANCELLED"
    third = cancel(alpha_staff, job.job_id)

    # then that is a conflict in the error shape, and nothing was published after CANCELLED
    assert third.status_code == 409
    assert third.json()["code"] == "conflict"
    assert set(third.json()) == {"code", "detail", "fields"}
    state = snapshot(job)
    assert (state["status"], state["seq"]) == ("CANCELLED", first.json()["seq"] + 1)


def test_a_finished_job_cannot_be_cancelled(alpha_staff: Member) -> None:
    # given a job that has run to DONE (a worker's finish, through the services)
    from domains.jobs import services

    job = create_job(alpha_staff, "test.probe")
    claim = services.job_claim(
        job.tenant_id, job_id=job.job_id, lease_owner="test", lease_seconds=30
    )
    assert claim.job is not None
    assert services.job_finish(
        job.tenant_id, job_id=job.job_id, attempt=1, status=services.JobStatus.DONE, result={}
    )

    # when its creator cancels it
    response = cancel(alpha_staff, job.job_id)

    # then 409, and the record and Redis still say DONE without a request
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    row = job_row(job.job_id)
    assert (row.status, row.cancel_requested) == ("DONE", False)
    assert (snapshot(job)["status"], snapshot(job)["cancel_requested"]) == ("DONE", False)


def test_an_excel_import_stops_between_chunks_and_keeps_the_committed_ones(
    alpha_staff: Member,
) -> None:
    # given an import of 1,200 students (chunks of 500) held right after its first chunk
    imports_bucket_ensure()
    handler = PausingHandler(
        ExcelImportHandler(), pause_when=lambda f: f["step"] == "write" and f["percent"] > 30
    )
    config = replace(
        queue_config(QueueKind.AI),
        visibility_timeout=6,
        lease_seconds=5,
        heartbeat_interval=1.0,
        max_runtime=120,
        max_visibility=300,
    )
    holder = thread_worker(QueueKind.AI, {"excel_import": handler}, config)
    try:
        form = {
            "job_type": "excel_import",
            "file": SimpleUploadedFile("students.xlsx", large_xlsx_bytes(1_200)),
            "initial_password": "first-login-2025",
        }
        created = client_for(alpha_staff).post("/api/v1/jobs/", form, format="multipart")
        assert created.status_code == 202, created.json()
        job = job_row(created.json()["job_id"])
        assert handler.reached.wait(60)

        # when a cancel is requested while the first chunk's progress is reported
        response = cancel(alpha_staff, job.job_id)

        # then the import ends CANCELLED with the first chunk's 500 students written and kept
        assert response.status_code == 202
        assert ended(job, timeout=60).status == "CANCELLED"
    finally:
        holder.stop()
    assert Student.objects.filter(tenant_id=alpha_staff.tenant.id).count() == 500
    assert not JobResult.objects.filter(job__job_id=job.job_id).exists()
    state = snapshot(job)
    assert (state["status"], state["cancel_requested"]) == ("CANCELLED", True)
    wait_for(lambda: job_row(job.job_id).terminal_published_at is not None)


# --- who may cancel -----------------------------------------------------------------------------
def test_another_tenant_gets_not_found_and_changes_nothing(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given alpha's pending job
    job = create_job(alpha_staff, "test.gate")

    # when beta's staff cancels it by its id
    response = cancel(beta_staff, job.job_id)

    # then it does not exist for them, and alpha's job is untouched
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    row = job_row(job.job_id)
    assert (row.status, row.cancel_requested) == ("PENDING", False)
    assert snapshot(job)["status"] == "PENDING"


def test_a_student_or_teacher_cannot_cancel_someone_elses_job(
    alpha_staff: Member, alpha_student: Member, alpha_teacher: Member
) -> None:
    # given a staff member's pending job
    job = create_job(alpha_staff, "test.gate")

    # when a student and a teacher of the same tenant cancel it
    answers = [cancel(alpha_student, job.job_id), cancel(alpha_teacher, job.job_id)]

    # then it is not theirs to see, exactly like a job that does not exist
    assert [a.status_code for a in answers] == [404, 404]
    assert cancel(alpha_student, uuid.uuid4()).json() == answers[0].json()
    assert job_row(job.job_id).status == "PENDING"


def test_a_teacher_cancels_their_own_job_and_a_role_that_may_not_start_it_may_not(
    alpha_teacher: Member, alpha_student: Member
) -> None:
    # given a teacher's messaging job, and a job a student owns (an import, which only staff
    # and admin may start: written directly, as no API lets a student create it)
    own = create_job(
        alpha_teacher, "messaging.send", {"subject": "s", "body": "b", "recipients": ["a@x.org"]}
    )
    students = Job.objects.create(
        tenant_id=alpha_student.tenant.id,
        job_type="excel_import",
        payload={},
        created_by_id=alpha_student.user.id,
    )

    # when each cancels their own
    teacher_answer = cancel(alpha_teacher, own.job_id)
    student_answer = cancel(alpha_student, students.job_id)

    # then the teacher's is CANCELLED, and the student's role may not stop an import
    assert teacher_answer.status_code == 202
    assert job_row(own.job_id).status == "CANCELLED"
    assert student_answer.status_code == 403
    assert student_answer.json()["code"] == "permission_denied"
    assert job_row(students.job_id).status == "PENDING"


def test_a_korean_caller_reads_the_refusal_in_korean(alpha_staff: Member) -> None:
    # given a job that has already been cancelled
    job = create_job(alpha_staff, "test.gate")
    assert cancel(alpha_staff, job.job_id).status_code == 202

    # when it is cancelled again in Korean
    response = client_for(alpha_staff).post(
        f"/api/v1/jobs/{job.job_id}/cancel/", HTTP_ACCEPT_LANGUAGE="ko"
    )

    # then the 409's detail is Korean
    assert response.status_code == 409
    assert response.json()["detail"] == "이미 끝난 작업이라 취소할 수 없습니다."


# --- Redis faults -----------------------------------------------------------------------------
def test_a_cancel_while_redis_is_down_is_recorded_and_its_state_published_by_the_relay(
    alpha_staff: Member, redis_down: Outage
) -> None:
    # given a pending job, created while Redis was up
    redis_down.end()
    job = create_job(alpha_staff, "test.gate")
    redis_down.start()

    # when it is cancelled while Redis is unreachable
    response = cancel(alpha_staff, job.job_id)

    # then the answer is 503 with Retry-After, yet the record is CANCELLED, not yet published
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert int(response["Retry-After"]) > 0
    row = job_row(job.job_id)
    assert (row.status, row.cancel_requested, row.terminal_published_at) == (
        "CANCELLED",
        True,
        None,
    )

    # when Redis is back and the outbox relay makes a pass
    redis_down.end()
    Relay(interval=1, batch=100, grace=0).tick()

    # then Redis holds CANCELLED and the record says it was published
    state = snapshot(job)
    assert (state["status"], state["cancel_requested"]) == ("CANCELLED", True)
    assert job_row(job.job_id).terminal_published_at is not None
