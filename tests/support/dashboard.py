"""What the dashboard's end-to-end tests do over HTTP beside the browser: start a job of each
kind against the live server (a message, an Excel import, a video encode), and read the
dashboard's rows back from the page.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Api:
    """The live server's HTTP API as one logged-in member."""

    base: str
    token: str

    @classmethod
    def login(cls, base: str, *, tenant: str, username: str, password: str) -> Api:
        answer = requests.post(
            f"{base}/api/v1/auth/token/",
            json={"tenant": tenant, "username": username, "password": password},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return cls(base=base, token=answer.json()["access"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def message(self, recipients: int) -> str:
        """A ``messaging.send`` job; its topic."""
        payload = {
            "subject": "Dashboard",
            "body": "Hello from the academy.",
            "recipients": [f"student{i}@example.com" for i in range(recipients)],
        }
        answer = requests.post(
            f"{self.base}/api/v1/jobs/",
            json={"job_type": "messaging.send", "payload": payload},
            headers=self.headers,
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["topic"])

    def excel_import(self, workbook: bytes) -> str:
        """An ``excel_import`` job of ``workbook`` (.xlsx bytes); its topic."""
        answer = requests.post(
            f"{self.base}/api/v1/jobs/",
            data={"job_type": "excel_import", "initial_password": "welcome2025"},
            files={"file": ("students.xlsx", workbook, XLSX)},
            headers=self.headers,
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["topic"])

    def video(self, clip: Path) -> str:
        """Register, upload and complete a video (its encode job is queued); its topic."""
        data = clip.read_bytes()
        registered = requests.post(
            f"{self.base}/media/videos/",
            json={
                "session_id": 7,
                "filename": clip.name,
                "size": len(data),
                "content_type": "video/mp4",
            },
            headers=self.headers,
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        body = registered.json()
        put = requests.put(
            body["upload_url"], data=data, headers=body["upload_headers"], timeout=60
        )
        assert put.status_code == 200, put.text
        done = requests.post(
            f"{self.base}/media/videos/{body['video_id']}/complete-upload/",
            headers=self.headers,
            timeout=30,
        )
        assert done.status_code == 202, done.text
        return str(body["topic"])


def make_clip(path: Path, *, seconds: int, size: str = "640x360") -> Path:
    """An H.264 + AAC mp4 from ffmpeg's lavfi test sources (Debian's ffmpeg)."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    command += ["-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    command += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    command += ["-c:a", "aac", "-shortest", str(path)]
    subprocess.run(command, check=True, timeout=120)
    return path


# --- the page ---------------------------------------------------------------------------------
ROWS_JS = """() => [...document.querySelectorAll('table.live tbody tr')].map((tr) => ({
  table: tr.closest('table').id, topic: tr.dataset.topic, status: tr.dataset.status,
  percent: Number(tr.dataset.percent), kind: tr.dataset.kind ?? null,
}))"""


@dataclass
class Samples:
    """The dashboard's rows as the page showed them, sampled over time."""

    times: list[float] = field(default_factory=list)
    rows: list[dict[str, dict[str, Any]]] = field(default_factory=list)

    def take(self, page: Any) -> dict[str, dict[str, Any]]:
        shown = {row["topic"]: row for row in page.evaluate(ROWS_JS)}
        self.times.append(time.monotonic())
        self.rows.append(shown)
        return shown

    def until(
        self, page: Any, done: Callable[[dict[str, dict[str, Any]]], bool], timeout: float
    ) -> None:
        """Sample every 50 ms until ``done(rows)``."""
        deadline = time.monotonic() + timeout
        while not done(self.take(page)):
            if time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not get there in {timeout} s")
            page.wait_for_timeout(50)

    def percents(
        self, topic: str, when: Callable[[dict[str, dict[str, Any]]], bool]
    ) -> list[float]:
        """The percents ``topic`` showed in the samples where ``when(rows)`` held."""
        return [rows[topic]["percent"] for rows in self.rows if topic in rows and when(rows)]


def running(row: dict[str, Any] | None) -> bool:
    """A row the page shows as running, with some progress and not finished."""
    return row is not None and row["status"] == "PROCESSING" and 0 < row["percent"] < 100
