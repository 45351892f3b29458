"""Queue kinds, caps and timings: the seeds' numbers, and combinations that would be unsafe."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from domains.jobs.dispatch import JobMessage, QueueKind
from workers.config import HARD_CONCURRENCY, queue_config
from workers.runner import effective_concurrency


def test_the_default_timings_are_the_seeds_and_are_safe() -> None:
    # given the default queue configurations
    ai, video = queue_config("ai"), queue_config("video")

    # when/then their timings are the seeds' and report no problem
    assert (ai.visibility_timeout, ai.lease_seconds, ai.max_runtime) == (3600, 3540, 3600)
    # ADR 0013: the seeds' hard 4 h is the video run limit, visibility covers it plus the margin
    assert (video.max_runtime, video.max_visibility) == (14_400, 14_460)
    assert (ai.max_concurrency, video.max_concurrency) == (5, 3)
    assert queue_config("messaging").max_concurrency == 5
    for kind in QueueKind:
        assert queue_config(kind).problems() == [], kind


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"lease_seconds": 3600}, "lease_seconds"),
        ({"heartbeat_interval": 3540}, "heartbeat_interval"),
        ({"max_runtime": 3700}, "max_runtime"),
        ({"max_visibility": 50_000}, "max_visibility"),
    ],
)
def test_timings_that_let_a_message_reappear_during_its_run_are_reported(
    changes: dict[str, float], problem: str
) -> None:
    # given the ai queue with one timing changed (the parameters)
    # when its problems are listed
    config = replace(queue_config("ai"), **changes)

    # then the timing is named
    assert any(problem in text for text in config.problems())


def test_concurrency_defaults_to_the_cap_and_never_exceeds_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given the hard concurrency caps
    # when/then no request means the cap and a smaller request is kept
    assert effective_concurrency(None, QueueKind.VIDEO) == HARD_CONCURRENCY[QueueKind.VIDEO]
    assert effective_concurrency(2, QueueKind.AI) == 2
    assert not caplog.records

    # when more than the cap is asked for
    assert effective_concurrency(9, QueueKind.VIDEO) == 3

    # then the cap is used, with a warning, and zero is refused
    assert "using 3" in caplog.text
    with pytest.raises(ValueError, match="at least 1"):
        effective_concurrency(0, QueueKind.AI)


def test_a_job_message_round_trips_and_anything_else_is_refused() -> None:
    # given a job message
    message = JobMessage(job_id=uuid.uuid4(), tenant_id=7, request_id="req-1")

    # when/then it round-trips, and text that is not a job message is refused
    assert JobMessage.decode(message.encode()) == message
    for bad in ("", "{}", '{"job_id": "nope", "tenant_id": 1}', "[1]", '{"job_id": 1}'):
        with pytest.raises(ValueError, match="not a job message"):
            JobMessage.decode(bad)
