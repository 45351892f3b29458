"""The outbox under faults, with real server, worker and relay processes (issue 10's fault
suite; docs/adr/0011-the-job-row-is-the-outbox.md): jobs created while SQS is down run once it
is back, a worker started while SQS is down waits for it, and a terminal state whose publish
died with its worker reaches the browser anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from domains.jobs.models import Job, JobResult
from tests.faults.stack import FaultStack, queue_counts
from tests.faults.support import Outcome, report, wait_for
from tests.support.faultproxy import FaultProxy
from tests.support.members import Member

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]
RECIPIENTS = 4


def _rows(job_ids: list[str]) -> list[Job]:
    by_id = {str(j.job_id): j for j in Job.objects.filter(job_id__in=job_ids)}
    return [by_id[job_id] for job_id in job_ids]


OUTAGE_JOBS = 5


def test_sqs_down_during_job_creation_the_relay_sends_once_it_is_back(
    stack: FaultStack, alpha_staff: Member
) -> None:
    # given the server, a worker and the relay, all reaching SQS through a proxy that refuses
    # every connection (moto down) once the worker has resolved its queue (a worker started
    # while SQS is down waits for it: the next scenario)
    stack.server()
    relay = stack.relay()
    worker = stack.worker()  # returned once it polls, its queue URL resolved
    stack.sqs_proxy.drop()
    watchers = stack.watchers(alpha_staff)
    try:
        # when browsers create jobs meanwhile
        started = time.monotonic()
        answers = [stack.post_job(alpha_staff, RECIPIENTS) for _ in range(OUTAGE_JOBS)]
        mean_create = (time.monotonic() - started) / OUTAGE_JOBS
        job_ids = [str(body["job_id"]) for _, body in answers]
        for job_id in job_ids:
            watchers.watch(f"job:{job_id}")

        # then every one is accepted (202 PENDING), nothing reaches the queue, and the rows
        # wait as unsent, past the relay's grace, without failing
        assert [(status, body["status"]) for status, body in answers] == [
            (202, "PENDING")
        ] * OUTAGE_JOBS
        time.sleep(3)
        rows = _rows(job_ids)
        assert [(j.status, j.message_sent_at) for j in rows] == [("PENDING", None)] * OUTAGE_JOBS
        assert queue_counts() == (0, 0)
        assert watchers.statuses() == ["PENDING"] * OUTAGE_JOBS

        # and once SQS answers again, the relay sends them and every job runs once
        stack.sqs_proxy.pass_()
        healed_at = time.monotonic()
        wait_for(lambda: [j.status for j in _rows(job_ids)] == ["DONE"] * OUTAGE_JOBS, timeout=60)
        wait_for(lambda: watchers.statuses() == ["DONE"] * OUTAGE_JOBS, timeout=30)
        wait_for(lambda: queue_counts() == (0, 0), timeout=30, every=0.2)
        converged = time.monotonic() - healed_at
        rows = _rows(job_ids)
        results = JobResult.objects.filter(job__job_id__in=job_ids).count()
        relayed = relay.output().count("relay: job message sent")
        outcome = Outcome(
            scenario="moto (SQS) down during job creation",
            jobs=OUTAGE_JOBS,
            watchers=len(watchers.watchers),
            lost=sum(s != "DONE" for s in watchers.statuses())
            + sum(stack.redis_status(alpha_staff, j) != "DONE" for j in rows),
            duplicated=max(0, results - OUTAGE_JOBS),
            stuck=sum(j.status != "DONE" for j in rows),
            seconds_to_converge=converged,
            notes=(
                f"SQS refused connections (proxy drop); each create answered 202 in "
                f"{mean_create:.2f} s on average; {relayed} messages sent by the relay "
                "(interval 0.5 s, grace 1 s); seconds from SQS answering again until records, "
                "watchers and queue were right"
            ),
        )
        report(outcome)
        assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
        assert all(j.message_sent_at is not None and j.attempt == 1 for j in rows)
        assert relayed == OUTAGE_JOBS
        assert worker.popen.poll() is None  # the worker waited the outage out
    finally:
        watchers.stop()


def test_worker_killed_after_the_finish_commit_before_the_publish(
    stack: FaultStack, alpha_staff: Member, proxy_factory: Callable[[int], FaultProxy]
) -> None:
    # given a worker reaching Redis through its own proxy, the server and the relay through
    # the stack's, and a job being watched
    stack.server()
    relay = stack.relay()
    worker_redis = proxy_factory(stack.redis.port)
    first = stack.worker(**stack.worker_redis(worker_redis))
    watchers = stack.watchers(alpha_staff)
    try:
        job = stack.create_job(alpha_staff, RECIPIENTS)
        watchers.watch(f"job:{job.job_id}")
        wait_for(lambda: len(stack.sent()) >= RECIPIENTS - 1, timeout=30, every=0.01)

        # when the worker's Redis stops answering right before the finish (its publish after
        # the commit hangs), and it is SIGKILLed once the finish is committed
        worker_redis.blackhole()
        wait_for(lambda: _rows([str(job.job_id)])[0].status == "DONE", timeout=30, every=0.01)
        first.kill()
        killed_at = time.monotonic()
        row = Job.objects.get(job_id=job.job_id)
        shown_at_kill = stack.redis_status(alpha_staff, job)
        assert row.terminal_published_at is None
        assert shown_at_kill == "PROCESSING"
        assert queue_counts()[1] == 1  # the message is still in flight, not deleted
        stack.worker()

        # then the relay publishes the terminal state from the record: the watcher ends on
        # DONE, with one terminal state and one result row; the redelivery is dropped
        wait_for(lambda: watchers.statuses() == ["DONE"], timeout=30)
        shown_done = time.monotonic() - killed_at
        wait_for(lambda: queue_counts() == (0, 0), timeout=30, every=0.2)
        converged = time.monotonic() - killed_at
        row = Job.objects.get(job_id=job.job_id)
        results = JobResult.objects.filter(job__job_id=job.job_id).count()
        republished = f"relay: terminal state republished tenant={alpha_staff.tenant.id} job="
        by_relay = f"{republished}{job.job_id}" in relay.output()
        outcome = Outcome(
            scenario="worker SIGKILLed after the finish commit, before the publish",
            jobs=1,
            watchers=len(watchers.watchers),
            lost=int(stack.redis_status(alpha_staff, job) != "DONE")
            + int(watchers.statuses() != ["DONE"]),
            duplicated=max(0, results - 1),
            stuck=int(row.status != "DONE"),
            seconds_to_converge=converged,
            notes=(
                f"Redis showed {shown_at_kill} at the kill; watcher on DONE {shown_done:.2f} s "
                f"after it ({'by the relay' if by_relay else 'not by the relay'}, grace 1 s); "
                f"queue empty after the redelivery (visibility 4 s); attempts {row.attempt}"
            ),
        )
        report(outcome)
        assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
        assert by_relay
        assert row.terminal_published_at is not None
        assert row.attempt == 1
        assert watchers.watchers[0].frames >= 2  # PROCESSING, then one DONE
        assert len(stack.sent()) == RECIPIENTS
    finally:
        watchers.stop()


STARTUP_JOBS = 3
STARTUP_OUTAGE = 6.0  # seconds SQS stays down after the workers started


def test_a_worker_started_while_sqs_is_down_waits_for_it_and_then_runs_the_jobs(
    stack: FaultStack, alpha_staff: Member
) -> None:
    # given SQS refusing the workers' connections (moto down behind their proxy) and jobs
    # already queued and watched (this process reaches moto directly)
    stack.server()
    stack.sqs_proxy.drop()
    watchers = stack.watchers(alpha_staff)
    try:
        jobs = [stack.create_job(alpha_staff, RECIPIENTS) for _ in range(STARTUP_JOBS)]
        for job in jobs:
            watchers.watch(f"job:{job.job_id}")
        job_ids = [str(j.job_id) for j in jobs]

        # when two workers start during the outage, one of them is told to stop meanwhile,
        # and SQS answers again a few seconds later
        worker = stack.worker(started=False)
        quitter = stack.worker(started=False)
        down_since = time.monotonic()
        retrying = "queue cannot be reached"
        wait_for(lambda: worker.output().count(retrying) >= 2, timeout=60, every=0.1)
        wait_for(lambda: retrying in quitter.output(), timeout=60, every=0.1)
        quit_code = quitter.terminate(timeout=15)
        time.sleep(max(0.0, STARTUP_OUTAGE - (time.monotonic() - down_since)))
        assert worker.popen.poll() is None  # still waiting, not exited
        assert [j.status for j in _rows(job_ids)] == ["PENDING"] * STARTUP_JOBS
        stack.sqs_proxy.pass_()
        healed_at = time.monotonic()
        outage = healed_at - down_since

        # then the waiting worker starts and runs every job once; the stopped one exited 0
        # without starting; every watcher ends on DONE and the queue empties
        wait_for(lambda: [j.status for j in _rows(job_ids)] == ["DONE"] * STARTUP_JOBS, timeout=60)
        wait_for(lambda: watchers.statuses() == ["DONE"] * STARTUP_JOBS, timeout=30)
        wait_for(lambda: queue_counts() == (0, 0), timeout=30, every=0.2)
        converged = time.monotonic() - healed_at
        rows = _rows(job_ids)
        results = JobResult.objects.filter(job__job_id__in=job_ids).count()
        failures = worker.output().count(retrying)
        outcome = Outcome(
            scenario="worker started while moto (SQS) is down",
            jobs=STARTUP_JOBS,
            watchers=len(watchers.watchers),
            lost=sum(s != "DONE" for s in watchers.statuses())
            + sum(stack.redis_status(alpha_staff, j) != "DONE" for j in rows),
            duplicated=max(0, results - STARTUP_JOBS),
            stuck=sum(j.status != "DONE" for j in rows),
            seconds_to_converge=converged,
            notes=(
                f"SQS refused the workers' connections for {outage:.1f} s after they started; "
                f"the worker logged {failures} failed queue lookups (backoff 1, 2, 4 s …) and "
                "started once SQS answered; a second worker stopped by SIGTERM during the "
                f"wait exited {quit_code}; seconds from SQS answering again until records, "
                "watchers and queue were right"
            ),
        )
        report(outcome)
        assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
        assert all(j.attempt == 1 for j in rows)
        assert " started: queue=" in worker.output()
        assert quit_code == 0
        assert "worker start abandoned" in quitter.output()
        assert " started: queue=" not in quitter.output()
    finally:
        watchers.stop()
