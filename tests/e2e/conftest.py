"""End-to-end: the demo page in Debian's Chromium against a real daphne, worker, Redis,
PostgreSQL and moto's SQS — separate processes, talking over real sockets.

The server and worker are subprocesses using the test database; rows a test creates are
committed (``transactional_db``) so they see them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from domains.tenants import repository
from domains.tenants.roles import Role
from project import devservices

BASE_DIR = Path(settings.BASE_DIR)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make browser)"
)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        if devservices.port_open("127.0.0.1", port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Stack:
    port: int
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_server(self) -> None:
        self.processes["server"] = self._spawn(
            "server",
            [
                sys.executable,
                "-m",
                "project.daphne_server",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "project.asgi:application",
            ],
        )
        _wait_for_port(self.port, self.processes["server"])

    def stop_server(self) -> None:
        self._stop("server")

    def start_worker(self, queue: str = "messaging") -> None:
        self.processes[f"worker-{queue}"] = self._spawn(
            f"worker-{queue}", [sys.executable, "manage.py", "run_worker", "--queue", queue]
        )

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(argv, cwd=BASE_DIR, env=self.env, stdout=log, stderr=log)

    def _stop(self, name: str) -> None:
        devservices.stop_process(self.processes.pop(name, None))

    def stop(self) -> None:
        for name in list(self.processes):
            self._stop(name)


@pytest.fixture
def stack(browser: Any, transactional_db: None, tmp_path: Path) -> Iterator[Stack]:
    database = settings.DATABASES["default"]
    port = devservices.free_port()
    env = {
        **os.environ,
        "DJANGO_ENV": "test",  # same password hasher as the fixtures that create the users
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "DB_POOL_MAX_SIZE": "4",
        "REDIS_URL": settings.REDIS_URL,
        "AWS_ENDPOINT_URL": settings.AWS_ENDPOINT_URL,
        "REALTIME_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
        "DEMO_ENABLED": "true",
        "LOG_LEVEL": "INFO",
        # A paced provider makes jobs last long enough to watch: 20 recipients per second.
        "MESSAGING_BATCH_SIZE": "20",
        "MESSAGING_SEND_INTERVAL": "1.0",
        "SQS_WAIT_TIME_SECONDS": "1",
        "PYTHONPATH": str(BASE_DIR),
    }
    tenant = repository.tenant_upsert(code="alpha", name="Alpha Academy")
    repository.member_upsert(
        tenant.id, username="alpha-staff", password="demo1234", role=Role.STAFF
    )
    call_command("create_queues")
    stack = Stack(port=port, env=env, logs=tmp_path)
    try:
        stack.start_server()
        stack.start_worker("messaging")
        yield stack
    finally:
        stack.stop()
        for log in sorted(tmp_path.glob("*.log")):  # shown by pytest when a test failed
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")  # noqa: T201


@pytest.fixture
def ai_worker(stack: Stack) -> Stack:
    """The ``ai`` queue's worker (the Excel import), for the tests that need it."""
    stack.start_worker("ai")
    return stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while it lives; the
    # tests' own ORM calls (fixtures, flush) are plain sync code, so allow them meanwhile.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Wire:
    """What the page sent and received, with monotonic timestamps."""

    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (t, method, url)
    frames_in: list[tuple[float, str]] = field(default_factory=list)
    frames_out: list[tuple[float, str]] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("request", lambda r: self.requests.append((time.monotonic(), r.method, r.url)))

        def on_socket(ws: Any) -> None:
            self.sockets.append(ws.url)
            ws.on("framereceived", lambda p: self.frames_in.append((time.monotonic(), str(p))))
            ws.on("framesent", lambda p: self.frames_out.append((time.monotonic(), str(p))))

        page.on("websocket", on_socket)


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[tuple[Any, Wire]]:
    context = browser.new_context()
    page = context.new_page()
    wire = Wire()
    wire.attach(page)
    yield page, wire
    context.close()
