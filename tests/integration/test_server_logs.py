"""No access token in any server log (PROTOCOL.md §4; audit F10), grepped from real output.

The ASGI servers run as subprocesses with their shipped command lines: uvicorn with the
arguments of ``infra/asgi/academy-asgi@.service`` (the production unit), daphne as
``make demo`` and the end-to-end tests start it. Each gets requests carrying a token in the
query string, on the WebSocket path and on an API path; then its stdout and stderr are read.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from project import devservices

BASE_DIR = Path(__file__).resolve().parents[2]
UNIT = BASE_DIR / "infra" / "asgi" / "academy-asgi@.service"
SECRET = "eyJzZWNyZXQiOiJub3QtaW4tYW55LWxvZyJ9.c2lnbmF0dXJl.U0VDUkVUVE9LRU4"


def unit_command(port: int) -> list[str]:
    """The unit's ExecStart with this checkout's uvicorn and ``port`` for ``%i``."""
    lines = UNIT.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ExecStart="))
    command = ""
    for line in lines[start:]:
        command += line.removeprefix("ExecStart=").rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            break
    argv = shlex.split(command.replace("%i", str(port)))
    assert argv[0].endswith("/uvicorn")
    return [sys.executable, "-m", "uvicorn", *argv[1:]]


def daphne_command(port: int) -> list[str]:
    """As project/devrun.py (`make demo`) and the end-to-end tests start it."""
    module = "project.daphne_server"
    return [
        sys.executable,
        "-m",
        module,
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "project.asgi:application",
    ]


def server_env(**extra: str) -> dict[str, str]:
    database = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "REDIS_URL": settings.REDIS_URL,
        "AWS_ENDPOINT_URL": settings.AWS_ENDPOINT_URL,
        "LOG_LEVEL": "DEBUG",
        "PYTHONPATH": str(BASE_DIR),
        **extra,
    }


def run_and_read_logs(argv: list[str], port: int, tmp_path: Path, **env: str) -> str:
    """Start the server, make the token-carrying requests, stop it; its whole output."""
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=BASE_DIR, env=server_env(**env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while not devservices.port_open("127.0.0.1", port):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
            make_requests(port)
        finally:
            devservices.stop_process(process)
    return log_path.read_text(errors="replace")


def make_requests(port: int) -> None:
    base = f"127.0.0.1:{port}"
    # A socket the consumer refuses (the token is not a valid JWT), and one that never opens.
    for path in (f"/ws/v1/?token={SECRET}", f"/ws/nowhere/?token={SECRET}"):
        try:
            with connect(f"ws://{base}{path}", subprotocols=["realtime.v1"], open_timeout=10) as ws:  # type: ignore[list-item]
                ws.recv(timeout=5)
        except (WebSocketException, OSError, TimeoutError):
            pass
    for path in (
        f"/api/v1/jobs/?token={SECRET}",
        f"/health/?token={SECRET}",
        f"/no-such-page/?token={SECRET}",
    ):
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://{base}{path}", timeout=10).read()


@pytest.fixture
def port() -> int:
    return devservices.free_port()


@pytest.mark.slow
@pytest.mark.parametrize("server", ["uvicorn-unit", "uvicorn-unit-with-access-log", "daphne"])
def test_F10_no_token_reaches_the_server_log(server: str, port: int, tmp_path: Path) -> None:
    # given the server as it is shipped (and uvicorn with its access log switched back on),
    # with uvicorn's per-WebSocket lines on (off by default: the next test)
    if server == "daphne":
        argv = daphne_command(port)
    else:
        argv = unit_command(port)
        if server == "uvicorn-unit-with-access-log":
            argv = [arg for arg in argv if arg != "--no-access-log"]

    # when requests carry a token in the query string
    output = run_and_read_logs(argv, port, tmp_path, LOG_WEBSOCKET_CONNECTIONS="true")

    # then the requests were logged (uvicorn's access lines only where its access log is on:
    # the next test), and the token nowhere
    assert "/ws/v1/" in output, output
    assert "/api/v1/jobs/" in output or server == "uvicorn-unit", output
    assert ("uvicorn.access" in output) is (server == "uvicorn-unit-with-access-log"), output
    assert SECRET not in output, output
    assert SECRET[:20] not in output
    assert "token=[redacted]" in output, output
    # and uvicorn's per-request access line appears only when its access log is on: under
    # --no-access-log Django's logging must not give the logger a handler back (ADR 0018)
    if server == "uvicorn-unit":
        assert '"GET /health/' not in output, output
    if server == "uvicorn-unit-with-access-log":
        assert '"GET /health/' in output, output


@pytest.mark.slow
def test_uvicorns_per_websocket_and_access_lines_are_off_in_the_unit_by_default(
    port: int, tmp_path: Path
) -> None:
    # given the production unit with the default settings
    argv = unit_command(port)

    # when a socket opens (and is closed by the consumer) and another path is refused
    output = run_and_read_logs(argv, port, tmp_path)

    # then neither the accept nor the open and close lines are written, nor (--no-access-log)
    # any access line; uvicorn's start and the application's own refusal are
    assert "Uvicorn running on" in output, output
    assert "[accepted]" not in output, output
    assert "connection open" not in output, output
    assert "connection closed" not in output, output
    assert "uvicorn.access" not in output, output
    assert "realtime.auth: websocket refused" in output, output
    assert SECRET not in output
