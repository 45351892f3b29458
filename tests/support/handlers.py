"""Handlers for worker tests: each records what happened to it, nothing more."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


class PausedProgress:
    """A job's progress API that holds the handler at the first report ``pause_when`` picks,
    until the worker has seen a cancel request (and ``release`` is set, when given): as if the
    request arrived while that unit of work (a batch, a chunk) ran. Everything else goes to the
    real progress unchanged."""

    def __init__(
        self,
        real: JobProgress,
        *,
        pause_when: Callable[[dict[str, Any]], bool],
        reached: threading.Event,
        release: threading.Event | None = None,
        timeout: float = 30,
    ) -> None:
        self._real = real
        self._pause_when = pause_when
        self._reached = reached
        self._release = release
        self._timeout = timeout
        self._paused = False

    def _held(self) -> bool:
        released = self._release is None or self._release.is_set()
        return not (self._real.cancel_requested and released)

    @property
    def lease_lost(self) -> bool:
        return self._real.lease_lost

    @property
    def cancel_requested(self) -> bool:
        return self._real.cancel_requested

    def check(self) -> None:
        self._real.check()

    def update(self, **fields: Any) -> None:
        if not self._paused and self._pause_when(fields):
            self._paused = True
            self._reached.set()
            deadline = time.monotonic() + self._timeout
            while self._held() and time.monotonic() < deadline:
                time.sleep(0.02)
        self._real.update(**fields)


class PausingHandler:
    """Runs a real handler with :class:`PausedProgress`; ``reached`` is set at the pause. With
    ``hold=True`` the pause also waits for ``release``, which the test sets."""

    def __init__(
        self, inner: Any, *, pause_when: Callable[[dict[str, Any]], bool], hold: bool = False
    ) -> None:
        self.inner = inner
        self.pause_when = pause_when
        self.reached = threading.Event()
        self.release = threading.Event() if hold else None

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        paused = PausedProgress(
            progress, pause_when=self.pause_when, reached=self.reached, release=self.release
        )
        return self.inner.run(job, paused)  # type: ignore[no-any-return]
