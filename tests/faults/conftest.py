"""Fault-suite fixtures: private Redis servers, fault proxies, and this process's clients
pointed at them.

The suite is not part of ``make test`` (``make test-faults`` runs it): it starts servers,
kills processes and waits out timeouts on purpose.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.db import connection

from domains.common.aws import sqs_client
from domains.jobs import dispatch
from domains.jobs import services as job_services
from domains.jobs.dispatch import QueueKind
from domains.jobs.models import Job
from project import devservices
from realtime import clients, store
from realtime.identity import Caller
from realtime.keys import Topic
from tests.conftest import Member
from tests.faults.proxy import FaultProxy, Mode
from tests.faults.support import (
    BASE_DIR,
    PostgresCluster,
    Process,
    Processes,
    RedisServer,
    Watchers,
    wait_for,
)
from workers import sqs

# Short enough that a blackholed call gives up quickly, long enough for a busy 2-core machine.
FAULT_SOCKET_TIMEOUT = 1.5
# The suite runs up to fifty unfinished jobs of one user: far over the job quota, which is not
# under test here (tests/integration covers it).
SUITE_JOB_QUOTA = 500


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start private ``redis-server`` processes; each is killed at teardown."""
    servers: list[RedisServer] = []

    def _start(name: str = "redis", **options: object) -> RedisServer:
        server = RedisServer(directory=tmp_path / name, **options)  # type: ignore[arg-type]
        servers.append(server.start())
        return server

    yield _start
    for server in servers:
        server.stop()


@pytest.fixture
def private_redis(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_factory()


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[int], FaultProxy]]:
    proxies: list[FaultProxy] = []

    def _start(upstream_port: int) -> FaultProxy:
        proxy = FaultProxy("127.0.0.1", upstream_port).start()
        proxies.append(proxy)
        return proxy

    yield _start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def redis_proxy(
    private_redis: RedisServer, proxy_factory: Callable[[int], FaultProxy]
) -> FaultProxy:
    return proxy_factory(private_redis.port)


@pytest.fixture
def use_redis() -> Iterator[Callable[[str], None]]:
    """Point this process's realtime clients at another Redis URL (restored afterwards)."""
    original = (settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT, settings.REDIS_CONNECT_TIMEOUT)

    def _use(url: str) -> None:
        settings.REDIS_URL = url
        settings.REDIS_SOCKET_TIMEOUT = FAULT_SOCKET_TIMEOUT
        settings.REDIS_CONNECT_TIMEOUT = FAULT_SOCKET_TIMEOUT
        clients.reset_clients()

    yield _use
    settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT, settings.REDIS_CONNECT_TIMEOUT = original
    clients.reset_clients()


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster, started; for scenarios that restart the database.

    Its directory is outside pytest's tmp dir: that one is private to root, and the cluster
    runs as ``postgres`` when the suite runs as root.
    """
    directory = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    directory.chmod(0o755)
    cluster = PostgresCluster(directory=directory / "cluster").init()
    cluster.start()
    yield cluster
    cluster.stop(mode="immediate")
    shutil.rmtree(directory, ignore_errors=True)


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


class _LongScript:
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


@pytest.fixture
def redis_fault(
    request: pytest.FixtureRequest,
    redis_factory: Callable[..., RedisServer],
    proxy_factory: Callable[[int], FaultProxy],
) -> Iterator[RedisFault]:
    """Parametrise indirectly with one of REDIS_FAULTS."""
    name: str = request.param
    if name == "oom":
        server = redis_factory()
        yield RedisFault(
            name,
            server.url(),
            inject=lambda: server.client().config_set("maxmemory", 1),
            heal=lambda: server.client().config_set("maxmemory", 0),
            reads_work=True,
        )
    elif name == "readonly":
        # A replica whose primary is gone: what a client still attached to a demoted
        # primary sees after a failover. REPLICAOF NO ONE promotes it.
        replica = redis_factory("replica", replicaof=("127.0.0.1", devservices.free_port()))
        yield RedisFault(
            name,
            replica.url(),
            inject=lambda: None,
            heal=lambda: replica.client().execute_command("REPLICAOF", "NO", "ONE"),
            reads_work=True,
        )
    elif name == "busy":
        server = redis_factory()
        script = _LongScript(server)
        yield RedisFault(name, server.url(), script.start, script.stop, reads_work=False)
        with contextlib.suppress(AssertionError):
            script.stop()
    else:
        server = redis_factory()
        proxy = proxy_factory(server.port)
        mode = {"refused": Mode.DROP, "reset": Mode.RESET, "timeout": Mode.BLACKHOLE}[name]
        yield RedisFault(
            name,
            server.url(port=proxy.port),
            inject=lambda: proxy.set_mode(mode),
            heal=proxy.pass_,
            reads_work=False,
        )


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

    def worker(self, *args: str, **env: str) -> Process:
        return self.processes.worker("messaging", *args, **env)

    def relay(self, **env: str) -> Process:
        """The outbox relay, quick: a pass every 0.5 s, rows left 1 s to their own sender."""
        return self.processes.relay("--interval", "0.5", "--grace", "1", **env)

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


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def _moto_reset() -> None:
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


@pytest.fixture
def stack(
    transactional_db: None,
    tmp_path: Path,
    redis_factory: Callable[..., RedisServer],
    proxy_factory: Callable[[int], FaultProxy],
    use_redis: Callable[[str], None],
) -> Iterator[FaultStack]:
    server = redis_factory()
    redis_proxy = proxy_factory(server.port)
    moto_port = urlsplit(settings.AWS_ENDPOINT_URL).port
    assert moto_port is not None
    sqs_proxy = proxy_factory(moto_port)
    use_redis(server.url())  # this process (job creation, checks) talks to Redis directly
    _moto_reset()
    sqs.queues_create(max_receive_count=3)
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(BASE_DIR),
        "DATABASE_URL": _database_url(),
        "DB_POOL_MAX_SIZE": "4",
        "REDIS_URL": server.url(port=redis_proxy.port),
        "REDIS_SOCKET_TIMEOUT": "2",
        "REDIS_CONNECT_TIMEOUT": "2",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{sqs_proxy.port}",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "emails"),
        "MESSAGING_BATCH_SIZE": "1",
        "MESSAGING_SEND_INTERVAL": FaultStack.PACE,
        "SQS_WAIT_TIME_SECONDS": "1",
        "WORKER_MESSAGING_VISIBILITY_TIMEOUT": "4",
        "WORKER_MESSAGING_LEASE_SECONDS": "3",
        "WORKER_MESSAGING_HEARTBEAT_INTERVAL": "1",
        "WORKER_RETRY_DELAY": "0",
        "WORKER_TICK": "0.1",
        "WORKER_REPUBLISH_INTERVAL": "0.5",
        "WORKER_DLQ_SWEEP_INTERVAL": "0",
        "REALTIME_RESYNC_INTERVAL": "1",
        "LOG_LEVEL": "INFO",
        # One user holds every watcher of a scenario (up to 200 sockets): past the per-user cap.
        "REALTIME_MAX_CONNECTIONS_PER_USER": "1000",
        "JOB_ACTIVE_MAX_PER_USER": str(SUITE_JOB_QUOTA),
        "JOB_ACTIVE_MAX_PER_TENANT": str(SUITE_JOB_QUOTA),
    }
    quotas = (settings.JOB_ACTIVE_MAX_PER_USER, settings.JOB_ACTIVE_MAX_PER_TENANT)
    settings.JOB_ACTIVE_MAX_PER_USER = settings.JOB_ACTIVE_MAX_PER_TENANT = SUITE_JOB_QUOTA
    processes = Processes(env=env, logs=tmp_path)
    stack = FaultStack(
        redis=server,
        redis_proxy=redis_proxy,
        sqs_proxy=sqs_proxy,
        processes=processes,
        emails=tmp_path / "emails",
    )
    try:
        yield stack
    finally:
        processes.stop_all()
        settings.JOB_ACTIVE_MAX_PER_USER, settings.JOB_ACTIVE_MAX_PER_TENANT = quotas
        dispatch.queue_urls_forget()
        print(processes.tails())  # noqa: T201 - shown by pytest when a scenario failed
