"""Scale-test fixtures: a private Redis, the test database and moto, real ASGI server
processes behind a real nginx, and real worker processes (``make test-scale``; not in
``make test``'s testpaths, since each scenario starts several servers)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from domains.jobs import dispatch
from project import devservices, scale
from realtime import clients
from tests.support.scale import Clients, RedisServer, database_url, log_tail
from tests.support.workers import moto_reset
from workers import sqs

BASE_DIR = Path(__file__).resolve().parents[2]
# The scenarios' users hold more sockets and jobs than the per-user defaults allow.
QUOTA = "1000"

pytestmark = pytest.mark.skipif(scale.nginx_binary() is None, reason="nginx missing (make proxy)")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis: its INFO counts only this scenario's connections."""
    server = RedisServer(directory=tmp_path / "redis").start()
    original = settings.REDIS_URL
    settings.REDIS_URL = server.url()
    clients.reset_clients()
    yield server
    settings.REDIS_URL = original
    clients.reset_clients()
    server.stop()


@pytest.fixture
def base_env(transactional_db: None, tmp_path: Path, redis_server: RedisServer) -> dict[str, str]:
    """The one environment of every server and worker process (nothing per process)."""
    moto_reset()
    sqs.queues_create(max_receive_count=3)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    return {
        **os.environ,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(BASE_DIR),
        "DATABASE_URL": database_url(),
        "DB_POOL_MAX_SIZE": "4",
        "REDIS_URL": redis_server.url(),
        "AWS_ENDPOINT_URL": settings.AWS_ENDPOINT_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "emails"),
        "MESSAGING_BATCH_SIZE": "1",
        "MESSAGING_SEND_INTERVAL": "0.15",
        "SQS_WAIT_TIME_SECONDS": "1",
        "WORKER_DLQ_SWEEP_INTERVAL": "0",
        "REALTIME_RESYNC_INTERVAL": "1",
        "REALTIME_ALLOWED_ORIGINS": "http://127.0.0.1",
        "LOG_LEVEL": "INFO",
        "REALTIME_MAX_CONNECTIONS_PER_USER": QUOTA,
        "JOB_ACTIVE_MAX_PER_USER": QUOTA,
        "JOB_ACTIVE_MAX_PER_TENANT": QUOTA,
        "MESSAGING_MAX_RECIPIENTS": "2000",
    }


@pytest.fixture
def clients_pool() -> Iterator[Clients]:
    pool = Clients()
    yield pool
    pool.stop()


@pytest.fixture
def web_tier(base_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., scale.WebTier]]:
    """Start ``WebTier``s (all stopped at teardown; server logs shown when a test failed)."""
    tiers: list[scale.WebTier] = []

    def _start(
        upstreams: list[scale.Upstream], env: dict[str, str] | None = None, **extra: str
    ) -> scale.WebTier:
        """``env`` replaces the base environment; ``extra`` adds to it."""
        tier = scale.WebTier(
            upstreams, env={**(env or base_env), **extra}, run_dir=tmp_path / f"tier{len(tiers)}"
        )
        tiers.append(tier)
        return tier.start()

    yield _start
    for tier in tiers:
        tier.stop()
        for index in range(len(tier.upstreams)):
            print(f"--- server {index}\n{log_tail(tier.log(index))}")  # noqa: T201


@pytest.fixture
def workers(
    base_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``manage.py run_worker --queue messaging`` processes (killed at teardown)."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def _start(
        *launcher: str, env: dict[str, str] | None = None, **extra: str
    ) -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker-{len(started)}.log"
        argv = [*launcher, sys.executable, "manage.py", "run_worker", "--queue", "messaging"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=BASE_DIR,
                env={**(env or base_env), **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append((process, log))
        return process

    yield _start
    for process, log in started:
        devservices.stop_process(process, timeout=10)
        print(f"--- {log.name}\n{log_tail(log)}")  # noqa: T201
    dispatch.queue_urls_forget()


@pytest.fixture
def metrics_exporter(
    base_env: dict[str, str],
) -> Iterator[Callable[[int], subprocess.Popen[bytes]]]:
    """Start ``manage.py serve_metrics`` (a workers' host's exporter) on a port."""
    started: list[subprocess.Popen[bytes]] = []

    def _start(port: int) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "manage.py", "serve_metrics", "--port", str(port)]
        process = subprocess.Popen(
            argv, cwd=BASE_DIR, env=base_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started.append(process)
        return process

    yield _start
    for process in started:
        devservices.stop_process(process, timeout=10)
