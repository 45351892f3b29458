"""Fault-suite fixtures: private Redis servers, fault proxies, and this process's clients
pointed at them.

The suite is not part of ``make test`` (``make test-faults`` runs it): it starts servers,
kills processes and waits out timeouts on purpose.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings

from project import devservices
from realtime import clients
from tests.faults.proxy import FaultProxy, Mode
from tests.faults.support import PostgresCluster, RedisServer, wait_for

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


# --- Redis states that refuse or fail: each one real, on a private server -------------------
@dataclass
class RedisFault:
    """A Redis state that refuses or fails calls: ``url`` to point clients at, ``inject()`` to
    break it, ``heal()`` to make it answer again, and whether reads still work meanwhile."""

    name: str
    url: str
    inject: Callable[[], None]
    heal: Callable[[], None]
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
