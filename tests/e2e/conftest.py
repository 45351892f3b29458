"""End-to-end: the demo page in Debian's Chromium against the ASGI server production runs
(``project.devrun.asgi_server_command``: uvicorn, or daphne with ``ACADEMY_ASGI_SERVER=daphne``),
a worker, Redis, PostgreSQL and moto's SQS — separate processes, talking over real sockets.

The server and worker are subprocesses using the test database; rows a test creates are
committed (``transactional_db``) so they see them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from domains.tenants import repository
from project import devservices
from realtime.identity import Role
from tests.support.e2e import BASE_DIR, CHROMIUM, CHROMIUM_ARGS, DEMO_CACHE, Stack, Wire

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make browser)"
)


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
        "DEMO_CACHE_DIR": str(DEMO_CACHE),
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


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[tuple[Any, Wire]]:
    context = browser.new_context()
    page = context.new_page()
    wire = Wire()
    wire.attach(page)
    yield page, wire
    context.close()
