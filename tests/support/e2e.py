"""End-to-end helpers: the server and worker processes of a test, the page's wire traffic,
and what the demo-page tests read from the page. The fixtures are in ``tests/e2e/conftest.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from project import devrun, devservices

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

SCREENSHOTS = BASE_DIR / "docs" / "img"
# Seconds a server may take to listen: Django's imports on two cores shared with other runs.
SERVER_START_TIMEOUT = 60
# The video page's sample lecture (project/demo_video.py), made once and kept between runs.
DEMO_CACHE = BASE_DIR / ".run" / "e2e-demo-cache"


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
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
        # The same command as `make demo`, so end-to-end tests what production runs.
        self.processes["server"] = self._spawn(
            "server", devrun.asgi_server_command("127.0.0.1", self.port)
        )
        wait_for_port(self.port, self.processes["server"], timeout=SERVER_START_TIMEOUT)

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


def wait_done(page: Any, timeout_s: float) -> float:
    page.wait_for_function("document.body.dataset.done", timeout=timeout_s * 1000)
    return time.monotonic()


def state_frames(wire: Wire, topic: str) -> list[dict[str, Any]]:
    frames = [json.loads(text) for _t, text in wire.frames_in]
    return [f for f in frames if f.get("type") == "state" and f.get("topic") == topic]


def shot(page: Any, name: str) -> None:
    if os.environ.get("E2E_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
