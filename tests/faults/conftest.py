"""Fault-suite fixtures: private Redis servers, fault proxies, and this process's clients
pointed at them; the stack of real processes (its helpers are in ``stack.py``).

The suite is not part of ``make test`` (``make test-faults`` runs it): it starts servers,
kills processes and waits out timeouts on purpose.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from domains.jobs import dispatch
from project import devservices
from realtime import clients
from tests.faults.stack import (
    FAULT_SOCKET_TIMEOUT,
    SUITE_JOB_QUOTA,
    FaultStack,
    LongScript,
    RedisFault,
    database_url,
    moto_reset,
)
from tests.faults.support import (
    BASE_DIR,
    PostgresCluster,
    Processes,
    RedisServer,
)
from tests.support.faultproxy import FaultProxy, Mode
from workers import sqs


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
        script = LongScript(server)
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
    moto_reset()
    sqs.queues_create(max_receive_count=3)
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(BASE_DIR),
        "DATABASE_URL": database_url(),
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
