"""Worker test fixtures: fresh queues in moto's server, test job types, workers in threads
or in real ``manage.py run_worker`` processes (the helpers are in ``tests/support/workers.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from domains.common.aws import sqs_client
from domains.jobs import types
from domains.jobs.dispatch import queue_urls_forget
from domains.jobs.types import OPERATOR_ROLES, JobType
from tests.support.handlers import Noop
from tests.support.workers import (
    BASE_DIR,
    KIND,
    TEST_TYPES,
    Outage,
    TestPayload,
    ThreadWorker,
    WorkerProcess,
    database_url,
    fast_config,
    moto_reset,
)
from workers.base import Handler
from workers.handlers.messaging import MessagingSendHandler
from workers.runner import Worker
from workers.sqs import queues_create


@pytest.fixture(autouse=True)
def fresh_queues() -> Iterator[None]:
    """Every test starts with empty queues (maxReceiveCount 3) and a clean outbox."""
    moto_reset()
    queues_create(max_receive_count=3)
    yield
    queue_urls_forget()


@pytest.fixture(autouse=True)
def test_job_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job types on the messaging queue whose handlers the tests control.

    The API modules are imported first: their filters and schemas take the registry's names
    when they are imported, and must not keep the test types after the test (the committed
    OpenAPI document would then differ for every later test in the session).
    """
    import_module(settings.ROOT_URLCONF)
    for name in TEST_TYPES:
        spec = JobType(name=name, kind=KIND, payload=TestPayload, roles=OPERATOR_ROLES)
        monkeypatch.setitem(types.JOB_TYPES, name, spec)


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


# --- outages (the Outage helper is in tests/support/workers.py) ----------------------------
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
