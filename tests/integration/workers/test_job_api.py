"""POST /api/v1/jobs/: 202 with the job's addresses, idempotency, 400s that queue nothing."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from psycopg import pq

from domains.jobs.dispatch import QueueKind
from domains.jobs.models import Job
from realtime import store
from realtime.keys import Topic
from tests.support.members import Member
from tests.support.workers import client_for, queue_bodies, queue_counts

URL = "/api/v1/jobs/"
PAYLOAD = {
    "subject": "Schedule change",
    "body": "Class starts at 10:00.",
    "recipients": ["a@example.com", "b@example.com"],
}
Capture = Callable[..., AbstractContextManager[Any]]


def post(member: Member, body: dict[str, Any], capture: Capture, **headers: str) -> Any:
    """POST as the member; the after-commit work (Redis, SQS) runs as it would after a commit."""
    with capture(execute=True):
        return client_for(member).post(URL, body, format="json", headers=headers)


def test_a_new_job_is_pending_in_db_and_redis_and_queued_once(
    alpha_staff: Member, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a staff member of alpha (fixture)
    # when they post a messaging job with a request id
    response = post(
        alpha_staff,
        {"job_type": "messaging.send", "payload": PAYLOAD},
        django_capture_on_commit_callbacks,
        **{"X-Request-ID": "req-1"},
    )

    # then it is PENDING in the database and Redis, and queued once with the ids only
    assert response.status_code == 202
    body = response.json()
    job_id = body["job_id"]
    assert body == {
        "job_id": job_id,
        "topic": f"job:{job_id}",
        "status": "PENDING",
        "progress_url": f"/api/v1/jobs/{job_id}/progress/",
        "detail_url": f"/api/v1/jobs/{job_id}/",
    }
    assert response["Location"] == body["detail_url"]
    job = Job.objects.get(job_id=job_id)
    assert (job.tenant_id, job.created_by_id, job.status, job.attempt) == (
        alpha_staff.tenant.id,
        alpha_staff.user.id,
        "PENDING",
        0,
    )
    assert job.payload == PAYLOAD
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(job_id))
    assert snap is not None
    assert (snap.status, snap.seq, snap.owner_id) == ("PENDING", 1, alpha_staff.user.id)
    assert queue_bodies(QueueKind.MESSAGING) == [
        {"job_id": job_id, "tenant_id": alpha_staff.tenant.id, "request_id": "req-1"}
    ]
    assert queue_counts(QueueKind.AI) == (0, 0)


def test_the_same_idempotency_key_returns_the_same_job_and_queues_nothing_more(
    alpha_staff: Member, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a job request and an idempotency key
    body = {"job_type": "messaging.send", "payload": PAYLOAD}

    # when it is posted twice with that key
    first = post(alpha_staff, body, django_capture_on_commit_callbacks, **{"Idempotency-Key": "k1"})
    again = post(alpha_staff, body, django_capture_on_commit_callbacks, **{"Idempotency-Key": "k1"})

    # then the second answer is the first job, and one message is queued
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert Job.objects.count() == 1
    assert queue_counts() == (1, 0)


def test_the_same_key_for_a_different_request_is_a_conflict(
    alpha_staff: Member, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a job posted with an idempotency key
    post(
        alpha_staff,
        {"job_type": "messaging.send", "payload": PAYLOAD},
        django_capture_on_commit_callbacks,
        **{"Idempotency-Key": "k1"},
    )

    # when another request comes with the same key
    other = post(
        alpha_staff,
        {"job_type": "messaging.send", "payload": {**PAYLOAD, "subject": "Another"}},
        django_capture_on_commit_callbacks,
        **{"Idempotency-Key": "k1"},
    )

    # then it is a conflict, and nothing more is created or queued
    assert other.status_code == 409
    assert other.json()["code"] == "conflict"
    assert Job.objects.count() == 1
    assert queue_counts() == (1, 0)


def test_another_tenant_neither_sees_nor_reuses_a_job_or_its_key(
    alpha_staff: Member, beta_staff: Member, django_capture_on_commit_callbacks: Capture
) -> None:
    # given alpha's job posted with an idempotency key
    body = {"job_type": "messaging.send", "payload": PAYLOAD}
    alpha_job = post(
        alpha_staff, body, django_capture_on_commit_callbacks, **{"Idempotency-Key": "shared"}
    ).json()

    # when beta posts with the same key and asks for alpha's job
    beta_job = post(
        beta_staff, body, django_capture_on_commit_callbacks, **{"Idempotency-Key": "shared"}
    )
    detail = client_for(beta_staff).get(alpha_job["detail_url"])
    progress = client_for(beta_staff).get(alpha_job["progress_url"])

    # then beta gets its own job and alpha's is 404 for it
    assert beta_job.status_code == 202
    assert beta_job.json()["job_id"] != alpha_job["job_id"]
    assert Job.objects.get(job_id=beta_job.json()["job_id"]).tenant_id == beta_staff.tenant.id
    assert (detail.status_code, progress.status_code) == (404, 404)
    assert queue_counts() == (2, 0)


@pytest.mark.parametrize(
    ("body", "settings_override", "field"),
    [
        ({"job_type": "nope", "payload": PAYLOAD}, {}, "job_type"),
        ({"payload": PAYLOAD}, {}, "job_type"),
        ({"job_type": "messaging.send", "payload": ["not", "an", "object"]}, {}, "payload"),
        ({"job_type": "messaging.send", "payload": {"body": "x", "recipients": []}}, {}, "payload"),
        (
            {"job_type": "messaging.send", "payload": {**PAYLOAD, "subject": "line\nbreak"}},
            {},
            "payload",
        ),
        (
            {"job_type": "messaging.send", "payload": {**PAYLOAD, "subject": "x" * 201}},
            {},
            "payload",
        ),
        (
            {"job_type": "messaging.send", "payload": PAYLOAD},
            {"MESSAGING_MAX_RECIPIENTS": 1},
            "payload",
        ),
        (
            {"job_type": "messaging.send", "payload": {**PAYLOAD, "body": "x" * 300}},
            {"JOB_PAYLOAD_MAX_BYTES": 256},
            "payload",
        ),
    ],
    ids=[
        "unknown-type",
        "no-type",
        "payload-not-object",
        "payload-missing-fields",
        "multiline-subject",
        "subject-too-long",
        "too-many-recipients",
        "payload-too-large",
    ],
)
def test_a_bad_request_is_400_with_field_errors_and_queues_nothing(
    alpha_staff: Member,
    django_capture_on_commit_callbacks: Capture,
    body: dict[str, Any],
    settings_override: dict[str, Any],
    field: str,
) -> None:
    # given a request that is bad in the parametrized way
    # when it is posted
    with override_settings(**settings_override):
        response = post(alpha_staff, body, django_capture_on_commit_callbacks)

    # then it is 400 naming the field, and nothing is created or queued
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "invalid"
    assert set(error) == {"code", "detail", "fields"}
    assert field in error["fields"]
    assert Job.objects.count() == 0
    assert queue_counts() == (0, 0)


def test_a_too_long_idempotency_key_is_400(
    alpha_staff: Member, django_capture_on_commit_callbacks: Capture
) -> None:
    # given an idempotency key of 129 characters
    # when a job is posted with it
    response = post(
        alpha_staff,
        {"job_type": "messaging.send", "payload": PAYLOAD},
        django_capture_on_commit_callbacks,
        **{"Idempotency-Key": "k" * 129},
    )

    # then it is refused, naming the header
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["fields"]
    assert queue_counts() == (0, 0)


def test_a_student_may_not_send_messages_to_the_academy(
    alpha_student: Member, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a student of alpha
    # when they post a messaging job
    response = post(
        alpha_student,
        {"job_type": "messaging.send", "payload": PAYLOAD},
        django_capture_on_commit_callbacks,
    )

    # then it is forbidden and nothing is queued
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert queue_counts() == (0, 0)


def test_without_a_token_nothing_is_created(api: Any) -> None:
    # given no token
    # when a job is posted
    response = api.post(URL, {"job_type": "messaging.send", "payload": PAYLOAD}, format="json")

    # then it is 401 and nothing is queued
    assert response.status_code == 401
    assert queue_counts() == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_queue_that_refuses_the_message_still_accepts_the_job_for_the_relay(
    alpha_staff: Member, settings: Any
) -> None:
    # given the kind's queue URL names a queue that does not exist (SQS answers with an error)
    queues_setting = {kind: dict(value) for kind, value in settings.WORKER_QUEUES.items()}
    queues_setting["messaging"]["url"] = f"{settings.AWS_ENDPOINT_URL}/123456789012/missing"
    settings.WORKER_QUEUES = queues_setting

    # when a job is posted
    response = client_for(alpha_staff).post(
        URL,
        {"job_type": "messaging.send", "payload": PAYLOAD},
        format="json",
        headers={"Idempotency-Key": "retry-me"},
    )

    # then it is accepted (PROTOCOL.md §5: the queue is not the client's problem), PENDING in
    # the record and in Redis, with its message left unsent for the relay and its key kept
    assert response.status_code == 202
    assert response.json()["status"] == "PENDING"
    job = Job.objects.get()
    assert (job.status, job.idempotency_key, job.message_sent_at) == ("PENDING", "retry-me", None)
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(job.job_id))
    assert snap is not None
    assert snap.status == "PENDING"


def test_field_errors_speak_the_callers_language(
    alpha_staff: Member, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a Korean-speaking caller and an unknown job type
    # when the job is posted
    response = post(
        alpha_staff,
        {"job_type": "nope", "payload": PAYLOAD},
        django_capture_on_commit_callbacks,
        **{"Accept-Language": "ko"},
    )

    # then the field error is in Korean
    assert response.status_code == 400
    assert response.json()["fields"]["job_type"] == ["알 수 없는 작업 유형입니다: nope."]


@contextmanager
def wire_trace() -> Iterator[list[str]]:
    """The PostgreSQL protocol messages Django's connection exchanges in the block (libpq's
    trace): what went over the wire, BEGIN and COMMIT included, which query capture omits."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    lines: list[str] = []
    with tempfile.TemporaryFile() as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield lines
        finally:
            pgconn.untrace()
            out.seek(0)
            lines += out.read().decode(errors="replace").splitlines()


def _round_trips(lines: list[str]) -> list[str]:
    """One entry per round trip (a ReadyForQuery ends each): the statement(s) it carried."""
    messages: list[str] = []
    for line in lines:
        if line.startswith(("F\t", "B\t")):
            messages.append(line)
        elif messages:  # a statement's next line: the trace writes its newlines as they are
            messages[-1] += " " + line
    trips: list[str] = []
    sent: list[str] = []
    for message in messages:
        direction, _, kind = message.split("\t", 3)[:3]
        text = message.split("\t", 3)[-1]
        if direction == "F" and kind in ("Query", "Parse"):
            sent.append(" ".join(text.split()))
        elif direction == "B" and kind == "ReadyForQuery":
            trips.append(" ; ".join(sent))
            sent = []
    return trips


@pytest.mark.django_db(transaction=True)  # no test transaction around it: as a server runs it
def test_the_job_insert_is_one_autocommit_round_trip(alpha_staff: Member) -> None:
    # given a staff member's client and Django's connection traced on the wire
    client = client_for(alpha_staff)

    # when they post a messaging job
    with wire_trace() as lines:
        response = client.post(
            URL, {"job_type": "messaging.send", "payload": PAYLOAD}, format="json"
        )

    # then the INSERT went in a round trip of its own, without BEGIN or COMMIT: committed
    # before the message was sent, which was marked after (ADR 0011's order)
    assert response.status_code == 202
    trips = _round_trips(lines)
    assert not [trip for trip in trips if '"BEGIN"' in trip or '"COMMIT"' in trip], trips
    inserts = [index for index, trip in enumerate(trips) if 'INSERT INTO "jobs' in trip]
    assert len(inserts) == 1, trips
    marks = [index for index, trip in enumerate(trips) if "SET message_sent_at" in trip]
    assert len(marks) == 1, trips
    assert marks[0] > inserts[0], trips
    # the quota count, the INSERT and the sent mark: three round trips in all
    assert len(trips) == 3, trips
    job = Job.objects.get(job_id=response.json()["job_id"])
    assert job.message_sent_at is not None
