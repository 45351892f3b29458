"""The fault suite's helpers that know the application: the Redis fault states, the stack of
real processes behind fault proxies (:class:`FaultStack`), and the queue counts. The fixtures
that build them are in ``conftest.py``; the process, server and watcher helpers that know no
application code are in ``support.py``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from domains.common.aws import sqs_client
from domains.jobs import dispatch
from domains.jobs import services as job_services
from domains.jobs.dispatch import QueueKind
from domains.jobs.models import Job
from project import devservices
from realtime import store
from realtime.identity import Caller
from realtime.keys import Topic
from tests.faults.support import (
    Process,
    Processes,
    RedisServer,
    Watchers,
    wait_for,
)
from tests.support.faultproxy import FaultProxy
from tests.support.members import Member

# Short enough that a blackholed call gives up quickly, long enough for a busy 2-core machine.
FAULT_SOCKET_TIMEOUT = 1.5
# The suite runs up to fifty unfinished jobs of one user: far over the job quota, which is not
# under test here (tests/integration covers it).
SUITE_JOB_QUOTA = 500


# --- Redis states that refuse or fail: each one real, on a private server -------------------
@dataclass
class RedisFault:
    """A Redis state that refuses or fails calls: ``url`` to point clients at, ``inject()`` to
    break it, ``heal()`` to make it answer again, and whether reads still work meanwhile."""

    name: str
    url: str
    inject: Callable[[], object]
    heal: Callable[[], object]
    reads_work: bool


class LongScript:
    """A Lua script that spins until SCRIPT KILL: every other client gets BUSY meanwhile."""

    SOURCE = "while true do redis.call('TIME') end"

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        control = self.server.client()
        control.config_set("busy-reply-threshold", 50)

        def spin() -> None:
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(self.server.url(), socket_timeout=30).eval(self.SOURCE, 0)

        self.thread = threading.Thread(target=spin, name="long-script", daemon=True)
        self.thread.start()
        wait_for(self._busy, timeout=10)

    def _busy(self) -> bool:
        try:
            self.server.client().ping()
        except redis.ResponseError as exc:
            return str(exc).startswith("BUSY")
        return False

    def stop(self) -> None:
        wait_for(self._killed, timeout=10)
        if self.thread is not None:
            self.thread.join(10)

    def _killed(self) -> bool:
        try:
            self.server.client().script_kill()
        except redis.ResponseError as exc:
            return str(exc).startswith("NOTBUSY")
        return True


REDIS_FAULTS = ("oom", "readonly", "busy", "refused", "reset", "timeout")


# --- a stack of real processes behind fault proxies -----------------------------------------
@dataclass
class FaultStack:
    """A private Redis and moto's SQS, each behind a fault proxy, the test database, and
    worker and ASGI server processes pointed at the proxies. Jobs are ``messaging.send`` with
    paced batches (one recipient every ``PACE`` s), so a test can strike mid-run."""

    redis: RedisServer
    redis_proxy: FaultProxy
    sqs_proxy: FaultProxy
    processes: Processes
    emails: Path
    server_port: int = 0

    PACE = "0.3"

    def worker(self, *args: str, started: bool = True, **env: str) -> Process:
        """A messaging worker; with ``started``, once it is polling (its start-up, Django's
        imports, takes long on a loaded machine and must not eat a scenario's timeouts)."""
        process = self.processes.worker("messaging", *args, **env)
        if started:
            _started(process, " started: queue=")
        return process

    def relay(self, **env: str) -> Process:
        """The outbox relay, quick: a pass every 0.5 s, rows left 1 s to their own sender;
        returned once it runs."""
        process = self.processes.relay("--interval", "0.5", "--grace", "1", **env)
        _started(process, "relay started")
        return process

    def worker_redis(self, proxy: FaultProxy) -> dict[str, str]:
        """Environment for a process that reaches Redis through its own ``proxy``."""
        return {"REDIS_URL": self.redis.url(port=proxy.port)}

    def get_job(self, member: Member, job: Job) -> dict[str, object]:
        """The job's record through the server's detail endpoint (which repairs Redis on read)."""
        port = self.server_port or self.server()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/jobs/{job.job_id}/",
            headers={"Authorization": f"Bearer {member.access_token()}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return dict(json.loads(response.read()))

    def post_job(self, member: Member, recipients: int = 8) -> tuple[int, dict[str, object]]:
        """Create a job through the ASGI server's API, as a browser does: (status, body)."""
        port = self.server_port or self.server()
        body = json.dumps(
            {
                "job_type": "messaging.send",
                "payload": {
                    "subject": "Fault drill",
                    "body": "Class at ten.",
                    "recipients": [f"s{i}@example.com" for i in range(recipients)],
                },
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/jobs/",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {member.access_token()}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())

    def server(self) -> int:
        self.server_port = self.server_port or devservices.free_port()
        self.processes.server(
            self.server_port, REALTIME_ALLOWED_ORIGINS=f"http://127.0.0.1:{self.server_port}"
        )
        return self.server_port

    def watchers(self, member: Member) -> Watchers:
        port = self.server_port or self.server()
        return Watchers(
            f"ws://127.0.0.1:{port}/ws/v1/", member.access_token(), f"http://127.0.0.1:{port}"
        )

    def create_job(self, member: Member, recipients: int = 8) -> Job:
        return job_services.job_create(
            member.tenant.id,
            caller=Caller(
                tenant_id=member.tenant.id,
                user_id=member.user.id,
                role=member.role,
                expires_at=int(time.time()) + 600,
            ),
            job_type="messaging.send",
            payload={
                "subject": "Fault drill",
                "body": "Class at ten.",
                "recipients": [f"s{i}@example.com" for i in range(recipients)],
            },
        )

    def sent(self) -> list[str]:
        recipients: list[str] = []
        for path in sorted(self.emails.glob("*.log")) if self.emails.exists() else []:
            recipients += [
                line.removeprefix("To: ").strip()
                for line in path.read_text(errors="replace").splitlines()
                if line.startswith("To: ")
            ]
        return recipients

    def redis_status(self, member: Member, job: Job) -> str | None:
        raw = self.redis.client().hget(
            store.keyspace().status_key(member.tenant.id, Topic.job(job.job_id)), "status"
        )
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)


# Seconds a process may take to start: several times what an idle 2-core machine needs.
STARTUP_TIMEOUT = 180


def _started(process: Process, line: str) -> None:
    wait_for(
        lambda: line in process.output() or process.popen.poll() is not None,
        timeout=STARTUP_TIMEOUT,
        every=0.1,
    )
    if process.popen.poll() is not None:
        raise AssertionError(f"{process.name} exited: {process.output()[-2000:]}")


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def moto_reset() -> None:
    url = f"{settings.AWS_ENDPOINT_URL}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - moto's local server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200


def queue_counts() -> tuple[int, int]:
    """(visible, in flight) messages of the messaging queue, read past the proxy."""
    url = dispatch.queue_url(QueueKind.MESSAGING)
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )
