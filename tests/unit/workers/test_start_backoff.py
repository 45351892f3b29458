"""A worker started while SQS cannot be reached waits for it with backoff instead of exiting
(workers/runner.py ``build_when_queue_answers``). The real process against a proxied moto
that refuses connections is in tests/faults/test_outbox.py.

The waits go through the stop event; a recording event returns at once, so nothing sleeps.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from workers.runner import build_when_queue_answers


class RecordingEvent(threading.Event):
    """A stop event whose waits return at once and are recorded; set after ``stop_after``."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.stop_after = stop_after

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        if self.stop_after is not None and len(self.waits) >= self.stop_after:
            self.set()
        return self.is_set()


class FlakyBuild:
    """Raises the error botocore raises for a closed port ``failures`` times, then builds."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0
        self.built = object()

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")
        return self.built


def test_the_worker_is_built_once_sqs_answers_after_doubling_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a queue lookup that fails six times
    build, stopped = FlakyBuild(failures=6), RecordingEvent()

    # when the worker is built
    with caplog.at_level(logging.INFO, logger="workers.runner"):
        worker = build_when_queue_answers(
            build, kind="messaging", stopped=stopped, first_delay=1, max_delay=8
        )

    # then it was built on the seventh try, after waits of 1, 2, 4, 8, 8, 8 s (±20 % jitter),
    # each failure logged with its cause, and the recovery logged once
    assert worker is build.built
    assert build.calls == 7
    for waited, nominal in zip(stopped.waits, [1, 2, 4, 8, 8, 8], strict=True):
        assert nominal * 0.8 <= waited <= nominal * 1.2
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 6
    assert "messaging queue cannot be reached (EndpointConnectionError" in failures[0]
    assert any("answers after 6 failed lookup(s)" in r.getMessage() for r in caplog.records)


def test_a_signal_during_the_wait_ends_it_without_a_worker() -> None:
    # given a queue that never answers
    build, stopped = FlakyBuild(failures=10**6), RecordingEvent(stop_after=3)

    # when the stop event is set during the third wait (SIGTERM)
    worker = build_when_queue_answers(build, kind="ai", stopped=stopped, max_delay=30)

    # then no worker is built and no further lookup is tried
    assert worker is None
    assert build.calls == 3


def test_anything_but_an_sqs_error_is_not_retried() -> None:
    # given a build that fails on a bad argument
    def build() -> Any:
        raise ValueError("concurrency must be at least 1")

    # when the worker is built, then the error goes through at once
    with pytest.raises(ValueError, match="concurrency"):
        build_when_queue_answers(build, kind="ai", stopped=RecordingEvent(), max_delay=30)
