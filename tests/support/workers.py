"""Worker test helpers: queues in moto's server, jobs created through the service, workers in
threads or in real ``manage.py run_worker`` processes. The fixtures that use them live in
``tests/integration/workers/conftest.py``.

Timings are seconds, not hours: visibility 2-4 s, leases 1-3 s, 1 s long polls. moto counts
visibility in whole seconds of wall-clock time, so tests wait with real sleeps.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from rest_framework import serializers
from rest_framework.test import APIClient

from domains.common.aws import sqs_client
from domains.jobs import services
from domains.jobs.dispatch import JobMessage, QueueKind, job_message_send, queue_url
from domains.jobs.models import Job
from realtime.identity import Caller
from tests.support.members import Member
from tests.support.tokens import make_token
from workers.config import QueueConfig, dlq_url, queue_config
from workers.runner import Worker

BASE_DIR = Path(__file__).resolve().parents[2]


KIND = QueueKind.MESSAGING


def moto_reset() -> None:
    url = f"{settings.AWS_ENDPOINT_URL}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - moto's local server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200


def queue_counts(kind: QueueKind = KIND, *, dlq: bool = False) -> tuple[int, int]:
    """(visible, in flight) messages of the kind's queue or of its dead-letter queue."""
    url = dlq_url(kind) if dlq else queue_url(kind)
    assert url is not None
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def queue_bodies(kind: QueueKind = KIND, *, dlq: bool = False) -> list[dict[str, Any]]:
    """Receive every visible message (then let go of them at once) and return their bodies."""
    url = dlq_url(kind) if dlq else queue_url(kind)
    assert url is not None
    client = sqs_client()
    response = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=1
    )
    messages = response.get("Messages", [])
    for message in messages:
        client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return [json.loads(m["Body"]) for m in messages]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def job_row(job_id: uuid.UUID | str) -> Job:
    return Job.objects.select_related("result").get(job_id=job_id)


def job_status(job_id: uuid.UUID | str) -> str:
    return Job.objects.filter(job_id=job_id).values_list("status", flat=True).get()


# --- job types for tests ----------------------------------------------------------------------
class TestPayload(serializers.Serializer):
    label = serializers.CharField(required=False, allow_blank=True, default="")


TEST_TYPES = ("test.gate", "test.sleep", "test.fail", "test.refuse", "test.probe")


def caller(member: Member) -> Caller:
    return Caller(
        tenant_id=member.tenant.id,
        user_id=member.user.id,
        role=member.role,
        expires_at=int(time.time()) + 300,
    )


def client_for(member: Member) -> APIClient:
    """An API client with the member's access token, made without a password check."""
    token = make_token(tenant_id=member.tenant.id, user_id=member.user.id, role=member.role.value)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def create_job(
    member: Member, job_type: str = "test.gate", payload: dict[str, Any] | None = None
) -> Job:
    """A job created through the service (row, PENDING in Redis, message) and committed."""
    return services.job_create(
        member.tenant.id,
        caller=caller(member),
        job_type=job_type,
        payload={} if payload is None else payload,
    )


def send_duplicate(job: Job) -> None:
    """Another copy of a job's message, as SQS's at-least-once delivery may hand out."""
    job_message_send(KIND, JobMessage(job_id=job.job_id, tenant_id=job.tenant_id))


# --- workers in threads -------------------------------------------------------------------------
def fast_config(**overrides: Any) -> QueueConfig:
    base = replace(
        queue_config(KIND),
        visibility_timeout=4,
        lease_seconds=3,
        heartbeat_interval=1.0,
        max_runtime=30,
        max_visibility=120,
    )
    return replace(base, **overrides)


@dataclass
class ThreadWorker:
    worker: Worker
    thread: threading.Thread
    exit_code: int | None = None

    def stop(self, timeout: float = 30) -> None:
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"


# --- workers in processes ---------------------------------------------------------------------
def database_url() -> str:
    """The test database (pytest-django renamed it), for worker subprocesses."""
    db = connection.settings_dict
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@dataclass
class WorkerProcess:
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def sent_emails(directory: Path) -> list[str]:
    """Recipients of every email the file backend wrote (one file per connection)."""
    recipients = []
    for path in sorted(directory.glob("*.log")) if directory.exists() else []:
        recipients += [
            line.removeprefix("To: ").strip()
            for line in path.read_text().splitlines()
            if line.startswith("To: ")
        ]
    return recipients


@dataclass
class Outage:
    """A service made unreachable for this process from the test's start; ``end()`` brings it
    back and ``start()`` takes it away again (the ``sqs_down`` and ``redis_down`` fixtures)."""

    start: Callable[[], None]
    end: Callable[[], None]


def thread_worker(
    kind: QueueKind, handlers: dict[str, Any] | None, config: QueueConfig, **kwargs: Any
) -> ThreadWorker:
    """A worker of ``kind`` running ``handlers`` (``None``: the registered ones) in a thread,
    with test timings; stop() it."""
    options: dict[str, Any] = {
        "config": config,
        "wait_seconds": 1,
        "grace": 5,
        "retry_delay": 0,
        "tick": 0.1,
        "dlq_sweep_interval": 0,
        "republish_interval": 0.2,
    }
    options.update(kwargs)
    worker = Worker(kind, handlers=handlers, **options)
    holder = ThreadWorker(worker=worker, thread=threading.Thread(target=lambda: None))

    def _run() -> None:
        holder.exit_code = worker.run()

    holder.thread = threading.Thread(target=_run, name=f"test-{kind}-worker", daemon=True)
    holder.thread.start()
    return holder
