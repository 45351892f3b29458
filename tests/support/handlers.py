"""Handlers for worker tests: each records what happened to it, nothing more."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from workers.base import JobProgress, JobRun, LeaseLost, PermanentError


@dataclass
class Calls:
    """What a handler saw: one (job_id, attempt) per call, and how each call ended."""

    started: list[tuple[str, int]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, job: JobRun) -> None:
        with self.lock:
            self.started.append((str(job.job_id), job.attempt))

    def end(self, how: str) -> None:
        with self.lock:
            self.ended.append(how)


class Gate:
    """Runs until released, publishing progress; stops with LeaseLost when its lease is lost."""

    def __init__(self) -> None:
        self.calls = Calls()
        self.release = threading.Event()
        self.running = threading.Event()

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        self.calls.start(job)
        self.running.set()
        percent = 0.0
        try:
            while not self.release.wait(0.05):
                percent = min(99.0, percent + 1)
                progress.update(percent=percent, step="waiting")
        except LeaseLost:
            self.calls.end("lease_lost")
            raise
        self.calls.end("done")
        return {"attempt": job.attempt}


class Sleeper:
    """Ignores progress and sleeps: a handler stuck in a long call (time-limit tests)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = Calls()
        self.returned = threading.Event()

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        self.calls.start(job)
        time.sleep(self.seconds)
        self.calls.end("returned")
        self.returned.set()
        return {"late": True}


class AlwaysFails:
    def __init__(self) -> None:
        self.calls = Calls()

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        self.calls.start(job)
        raise RuntimeError("boom")


class Refuses:
    def __init__(self) -> None:
        self.calls = Calls()

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        self.calls.start(job)
        raise PermanentError("The input cannot be processed.")


class ConcurrencyProbe:
    """Counts how many runs overlap, and whether the job thread holds a DB connection."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = Calls()
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.connections_held = 0

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        from django.db import connection

        self.calls.start(job)
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            if connection.connection is not None:
                self.connections_held += 1
        try:
            progress.update(percent=50)
            time.sleep(self.seconds)
        finally:
            with self.lock:
                self.now -= 1
        return {"ok": True}


class Noop:
    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        return {}
