"""Worker test fixtures: fresh queues in moto's server, test job types, workers in threads
or in real ``manage.py run_worker`` processes.

Timings are seconds, not hours: visibility 2-4 s, leases 1-3 s, 1 s long polls. moto counts
visibility in whole seconds of wall-clock time, so tests wait with real sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from rest_framework import serializers
from rest_framework.test import APIClient

from domains.common.aws import sqs_client
from domains.jobs import services, types
from domains.jobs.dispatch import (
    JobMessage,
    QueueKind,
    job_message_send,
    queue_url,
    queue_urls_forget,
)
from domains.jobs.models import Job
from domains.jobs.types import OPERATOR_ROLES, JobType
from realtime.identity import Caller
from tests.conftest import Member
from tests.integration.realtime.conftest import make_token
from tests.integration.workers.handlers import Noop
from workers.base import Handler
from workers.config import QueueConfig, dlq_url, queue_config
from workers.handlers.messaging import MessagingSendHandler
from workers.runner import Worker
from workers.sqs import queues_create

BASE_DIR = Path(__file__).resolve().parents[3]
KIND = QueueKind.MESSAGING


def moto_reset() -> None:
    url = f"{settings.AWS_ENDPOINT_URL}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - moto's local server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200


@pytest.fixture(autouse=True)
def fresh_queues() -> Iterator[None]:
    """Every test starts with empty queues (maxReceiveCount 3) and a clean outbox."""
    moto_reset()
    queues_create(max_receive_count=3)
    yield
    queue_urls_forget()


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


@pytest.fixture(autouse=True)
def test_job_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job types on the messaging queue whose handlers the tests control."""
    for name in TEST_TYPES:
        spec = JobType(name=name, kind=KIND, payload=TestPayload, roles=OPERATOR_ROLES)
        monkeypatch.setitem(types.JOB_TYPES, name, spec)


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

    def stop(self, timeout: float = 20) -> None:
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"


@pytest.fixture
def start_worker(db: None) -> Iterator[Callable[..., ThreadWorker]]:
    started: list[ThreadWorker] = []

    def _start(handlers: dict[str, Handler] | None = None, **kwargs: Any) -> ThreadWorker:
        all_handlers: dict[str, Handler] = {"messaging.send": MessagingSendHandler()}
        all_handlers.update({name: Noop() for name in TEST_TYPES})
        all_handlers.update(handlers or {})
        options: dict[str, Any] = {
            "config": fast_config(),
            "wait_seconds": 1,
            "grace": 5,
            "retry_delay": 0,
            "tick": 0.1,
            "dlq_sweep_interval": 0,
            "republish_interval": 0.2,
        }
        options.update(kwargs)
        worker = Worker(KIND, handlers=all_handlers, **options)
        holder = ThreadWorker(worker=worker, thread=threading.Thread(target=lambda: None))

        def _run() -> None:
            holder.exit_code = worker.run()

        holder.thread = threading.Thread(target=_run, name="test-worker", daemon=True)
        holder.thread.start()
        started.append(holder)
        return holder

    yield _start
    for holder in started:
        holder.stop()


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


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``manage.py run_worker --queue messaging`` with test timings from the environment.

    Output goes to a file: a pipe nobody reads would block a chatty worker.
    """
    processes: list[WorkerProcess] = []

    def _start(*args: str, **env: str) -> WorkerProcess:
        environment = {
            **os.environ,
            "DJANGO_ENV": "test",
            "DATABASE_URL": database_url(),
            "PYTHONPATH": str(BASE_DIR),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "emails"),
            "SQS_WAIT_TIME_SECONDS": "1",
            "WORKER_MESSAGING_VISIBILITY_TIMEOUT": "2",
            "WORKER_MESSAGING_LEASE_SECONDS": "1",
            "WORKER_MESSAGING_HEARTBEAT_INTERVAL": "0.5",
            "WORKER_RETRY_DELAY": "0",
            "WORKER_TICK": "0.1",
            "WORKER_DLQ_SWEEP_INTERVAL": "0",
            "LOG_LEVEL": "INFO",
            **env,
        }
        log = tmp_path / f"worker-{len(processes) + 1}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--queue", "messaging", *args],
                cwd=BASE_DIR,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = WorkerProcess(popen=popen, log=log)
        processes.append(process)
        return process

    yield _start
    for process in processes:
        if process.popen.poll() is None:
            process.popen.kill()
        process.popen.wait(timeout=10)


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


# --- outages ----------------------------------------------------------------------------------
@dataclass
class Outage:
    """A service made unreachable for this process from the test's start; ``end()`` brings it
    back and ``start()`` takes it away again."""

    start: Callable[[], None]
    end: Callable[[], None]


@pytest.fixture
def sqs_down(settings: Any) -> Iterator[Outage]:
    """SQS unreachable: the endpoint points at a closed port until ``end()`` (or the test's end).

    Only SQS: the S3 client is made first, at the real endpoint, and kept. Nothing of the
    project's dispatch code is replaced; its client is rebuilt against the dead endpoint.
    """
    from domains.common.aws import s3_client
    from project import devservices

    s3_client()
    real = settings.AWS_ENDPOINT_URL

    def endpoint(url: str) -> None:
        settings.AWS_ENDPOINT_URL = url
        sqs_client.cache_clear()
        queue_urls_forget()

    dead = f"http://127.0.0.1:{devservices.free_port()}"
    outage = Outage(start=lambda: endpoint(dead), end=lambda: endpoint(real))
    outage.start()
    yield outage
    outage.end()


@pytest.fixture
def redis_down(settings: Any) -> Iterator[Outage]:
    """Redis unreachable for this process (a closed port) until ``end()``."""
    from project import devservices
    from realtime import clients

    real = settings.REDIS_URL

    def url(value: str) -> None:
        settings.REDIS_URL = value
        clients.reset_clients()

    dead = f"redis://127.0.0.1:{devservices.free_port()}/0"
    outage = Outage(start=lambda: url(dead), end=lambda: url(real))
    outage.start()
    yield outage
    outage.end()
