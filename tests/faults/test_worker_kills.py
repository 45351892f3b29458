"""A worker SIGKILLed at each point of a job's life: exactly one terminal state, one result
row, and the right state at the watcher's side (issue 10's fault suite).

Real ``manage.py run_worker`` and uvicorn processes; the worker reaches Redis and SQS through
fault proxies. Each scenario prints a FAULT-RESULT line for docs/RELIABILITY.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from domains.jobs.models import Job, JobResult
from tests.faults.stack import FaultStack, queue_counts
from tests.faults.support import Outcome, Process, Watchers, report, wait_for
from tests.support.members import Member

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]
RECIPIENTS = 8


def _row(job: Job) -> Job:
    return Job.objects.get(job_id=job.job_id)


def _settle(
    scenario: str,
    stack: FaultStack,
    member: Member,
    job: Job,
    watchers: Watchers,
    killed_at: float,
    notes: Callable[[], str],
) -> Outcome:
    """Wait for the job to end right everywhere (record, watcher, queue empty with nothing in
    flight), then measure it: seconds from the kill until all of that held."""
    wait_for(lambda: _row(job).status == "DONE", timeout=60)
    wait_for(lambda: watchers.statuses() == ["DONE"], timeout=30)
    wait_for(lambda: queue_counts() == (0, 0), timeout=30, every=0.2)
    converged = time.monotonic() - killed_at
    results = JobResult.objects.filter(job__job_id=job.job_id).count()
    outcome = Outcome(
        scenario=scenario,
        jobs=1,
        watchers=len(watchers.watchers),
        lost=int(stack.redis_status(member, job) != "DONE"),
        duplicated=max(0, results - 1),
        stuck=int(_row(job).status != "DONE"),
        seconds_to_converge=converged,
        notes=notes(),
    )
    report(outcome)
    return outcome


def _kill_then_replace(
    stack: FaultStack, first: Process, before_restart: Callable[[], None] | None = None
) -> float:
    first.kill()
    killed_at = time.monotonic()
    if before_restart is not None:
        before_restart()
    stack.worker()
    return killed_at


@pytest.fixture
def watched_job(stack: FaultStack, alpha_staff: Member) -> Iterator[tuple[Job, Watchers]]:
    stack.server()
    watchers = stack.watchers(alpha_staff)
    job = stack.create_job(alpha_staff, RECIPIENTS)
    watchers.watch(f"job:{job.job_id}")
    yield job, watchers
    watchers.stop()


def test_killed_right_after_the_claim(
    stack: FaultStack, alpha_staff: Member, watched_job: tuple[Job, Watchers]
) -> None:
    # given a worker that has just claimed the job (PROCESSING, nothing sent yet)
    job, watchers = watched_job
    first = stack.worker()
    wait_for(lambda: _row(job).status == "PROCESSING", timeout=30, every=0.01)

    # when it is SIGKILLed and a fresh worker starts
    killed_at = _kill_then_replace(stack, first)
    sent_before = len(stack.sent())

    # then the job ends DONE once, with one result, and the watcher sees DONE
    outcome = _settle(
        "worker SIGKILLed after the claim",
        stack,
        alpha_staff,
        job,
        watchers,
        killed_at,
        notes=lambda: f"attempts {_row(job).attempt}, emails sent before the kill {sent_before}",
    )
    assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
    assert _row(job).attempt == 2
    assert set(stack.sent()) == {f"s{i}@example.com" for i in range(RECIPIENTS)}


def test_killed_mid_run(
    stack: FaultStack, alpha_staff: Member, watched_job: tuple[Job, Watchers]
) -> None:
    # given a worker half-way through the job
    job, watchers = watched_job
    first = stack.worker()
    wait_for(lambda: len(stack.sent()) >= RECIPIENTS // 2, timeout=30, every=0.02)

    # when it is SIGKILLed and a fresh worker starts
    killed_at = _kill_then_replace(stack, first)
    sent_before = len(stack.sent())

    # then the next attempt finishes the job, once; the watcher ends on DONE
    outcome = _settle(
        "worker SIGKILLed mid-run",
        stack,
        alpha_staff,
        job,
        watchers,
        killed_at,
        notes=lambda: (
            f"attempts {_row(job).attempt}; emails are at least once: "
            f"{len(stack.sent()) - RECIPIENTS} sent again (the handler does not checkpoint)"
        ),
    )
    assert sent_before < RECIPIENTS
    assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
    assert _row(job).attempt == 2


def test_killed_after_the_publish_before_the_sqs_delete(
    stack: FaultStack, alpha_staff: Member, watched_job: tuple[Job, Watchers]
) -> None:
    # given a worker about to finish while SQS stops answering (its delete will hang)
    job, watchers = watched_job
    first = stack.worker()
    wait_for(lambda: len(stack.sent()) >= RECIPIENTS - 1, timeout=30, every=0.01)
    stack.sqs_proxy.blackhole()
    wait_for(lambda: _row(job).status == "DONE", timeout=30)
    wait_for(lambda: stack.redis_status(alpha_staff, job) == "DONE", timeout=10)
    assert queue_counts()[1] == 1  # committed and published, the message not yet deleted

    # when it is SIGKILLed there, SQS comes back, and a fresh worker starts
    killed_at = _kill_then_replace(stack, first, before_restart=stack.sqs_proxy.pass_)

    # then the redelivery finds the job finished and only drops the message
    outcome = _settle(
        "worker SIGKILLed after the publish, before the SQS delete",
        stack,
        alpha_staff,
        job,
        watchers,
        killed_at,
        notes=lambda: "attempts 1; the redelivery (visibility 4 s) is dropped as a duplicate",
    )
    assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
    assert _row(job).attempt == 1
    assert len(stack.sent()) == RECIPIENTS
    assert "dropping a duplicate delivery" in stack.processes.started[-1].output()
