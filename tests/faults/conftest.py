"""Fault-suite fixtures: private Redis servers, fault proxies, and this process's clients
pointed at them.

The suite is not part of ``make test`` (``make test-faults`` runs it): it starts servers,
kills processes and waits out timeouts on purpose.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from realtime import clients
from tests.faults.proxy import FaultProxy
from tests.faults.support import PostgresCluster, RedisServer

# Short enough that a blackholed call gives up quickly, long enough for a busy 2-core machine.
FAULT_SOCKET_TIMEOUT = 1.5


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
