"""Every status a job can end in is an outcome the worker metrics count (workers/metrics.py).

The runner settles a finished attempt as ``metrics.job_settled(kind, status.lower(), …)``; an
outcome the metrics do not know raises, which once failed every cancelled job's slot."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from domains.jobs.models import TERMINAL_STATUSES
from workers import metrics


@pytest.mark.parametrize("status", TERMINAL_STATUSES)
def test_each_terminal_status_is_counted_and_timed(status: str) -> None:
    # given the counters before
    labels = {"kind": "messaging", "outcome": status.lower()}
    before = REGISTRY.get_sample_value("academy_worker_jobs_total", labels) or 0.0

    # when an attempt ends in that status
    metrics.job_settled("messaging", status.lower(), 1.5)

    # then it is counted under its own outcome, and its duration observed
    assert REGISTRY.get_sample_value("academy_worker_jobs_total", labels) == before + 1
    assert REGISTRY.get_sample_value("academy_worker_job_duration_seconds_count", labels)


def test_an_unknown_outcome_is_refused() -> None:
    # when / then: a typo is a programming error, not a new label value
    with pytest.raises(ValueError, match="unknown outcome"):
        metrics.job_settled("messaging", "canceled")
