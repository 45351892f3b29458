"""Redis refusing or not answering while jobs finish, with real worker and server processes:
records stand, no SQS message waits out its visibility timeout, and every watcher ends on its
job's terminal state once Redis answers again (issue 10's fault suite)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from domains.jobs.models import Job, JobResult
from tests.faults.stack import FaultStack, queue_counts
from tests.faults.support import Outcome, Watchers, report, wait_for
from tests.support.members import Member

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]
JOBS = 5
RECIPIENTS = 8


@pytest.fixture
def watched_jobs(stack: FaultStack, alpha_staff: Member) -> Iterator[tuple[list[Job], Watchers]]:
    stack.server()
    watchers = stack.watchers(alpha_staff)
    jobs = [stack.create_job(alpha_staff, RECIPIENTS) for _ in range(JOBS)]
    for job in jobs:
        watchers.watch(f"job:{job.job_id}")
    yield jobs, watchers
    watchers.stop()


def _statuses(jobs: list[Job]) -> list[str]:
    by_id = dict(
        Job.objects.filter(job_id__in=[j.job_id for j in jobs]).values_list("job_id", "status")
    )
    return [by_id[j.job_id] for j in jobs]


def _outcome(
    scenario: str, stack: FaultStack, member: Member, jobs: list[Job], watchers: Watchers, t0: float
) -> Outcome:
    results = JobResult.objects.filter(job__job_id__in=[j.job_id for j in jobs]).count()
    in_redis = [stack.redis_status(member, job) for job in jobs]
    return Outcome(
        scenario=scenario,
        jobs=len(jobs),
        watchers=len(watchers.watchers),
        lost=sum(status != "DONE" for status in in_redis)
        + sum(status != "DONE" for status in watchers.statuses()),
        duplicated=max(0, results - len(jobs)),
        stuck=sum(status != "DONE" for status in _statuses(jobs)),
        seconds_to_converge=time.monotonic() - t0,
    )


def test_redis_out_of_memory_while_jobs_finish(
    stack: FaultStack, alpha_staff: Member, watched_jobs: tuple[list[Job], Watchers]
) -> None:
    # given jobs running on one worker
    jobs, watchers = watched_jobs
    stack.worker()
    wait_for(lambda: _statuses(jobs) == ["PROCESSING"] * JOBS, timeout=30)

    # when Redis reaches its memory limit and refuses every write while they finish
    stack.redis.client().config_set("maxmemory", 1)
    wait_for(lambda: _statuses(jobs) == ["DONE"] * JOBS, timeout=60)

    # then the records stand, every message is deleted (none sits invisible), and Redis
    # shows no job finished (volatile-lru evicts running states to make room: audit F4)
    wait_for(lambda: queue_counts() == (0, 0), timeout=10, every=0.2)
    assert JobResult.objects.filter(job__job_id__in=[j.job_id for j in jobs]).count() == JOBS
    assert all(stack.redis_status(alpha_staff, j) != "DONE" for j in jobs)
    evicted = int(stack.redis.client().info("stats")["evicted_keys"])
    # and once Redis has room again, every terminal state is republished and every watcher
    # takes it: an evicted hash comes back at seq 1 of a larger epoch (PROTOCOL.md §2)
    healed_at = time.monotonic()
    stack.redis.client().config_set("maxmemory", 0)
    wait_for(lambda: all(stack.redis_status(alpha_staff, j) == "DONE" for j in jobs), timeout=30)
    wait_for(lambda: watchers.statuses() == ["DONE"] * JOBS, timeout=20)
    outcome = _outcome(
        "Redis OOM (maxmemory 1, volatile-lru) while jobs finish",
        stack,
        alpha_staff,
        jobs,
        watchers,
        healed_at,
    )
    outcome.notes = (
        f"{evicted} keys evicted meanwhile; a republished DONE recreating an evicted hash "
        "starts a new epoch, which watchers take over any seq of the old one"
    )
    report(outcome)
    assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)


BLACKHOLE_SECONDS = 30.0  # issue 10: "Redis blackholed for 30 s during finishes"
BLACKHOLE_JOBS, CREATED_IN_HOLE = 10, 3


def test_redis_blackholed_for_30_s_while_jobs_run_finish_and_are_created(
    stack: FaultStack, alpha_staff: Member
) -> None:
    # given ten watched jobs on one worker (five slots), the first five half-way through
    stack.server()
    stack.relay()
    watchers = stack.watchers(alpha_staff)
    try:
        jobs = [stack.create_job(alpha_staff, RECIPIENTS) for _ in range(BLACKHOLE_JOBS)]
        for job in jobs:
            watchers.watch(f"job:{job.job_id}")
        stack.worker()
        wait_for(lambda: len(stack.sent()) >= 5 * RECIPIENTS // 2, timeout=60, every=0.02)

        # when Redis stops answering for 30 s (blackhole: connections accepted, nothing
        # forwarded; the server, the worker and the relay all behind it), while the jobs run
        # and finish, and browsers create three more jobs through the API meanwhile
        with stack.redis_proxy.fault("blackhole") as started:
            created_at = time.monotonic()
            answers = [stack.post_job(alpha_staff, RECIPIENTS) for _ in range(CREATED_IN_HOLE)]
            mean_create = (time.monotonic() - created_at) / CREATED_IN_HOLE
            time.sleep(max(0.0, BLACKHOLE_SECONDS - (time.monotonic() - started)))
            statuses_in_hole = _statuses(jobs)
            blackholed = time.monotonic() - started
        healed_at = time.monotonic()
        assert [(status, body["status"]) for status, body in answers] == [
            (202, "PENDING")
        ] * CREATED_IN_HOLE
        # (their PENDING publish was lost in the hole: until a worker claims one, its socket
        # answers not_found, and the watcher reads the record as the browser client does)
        late = [Job.objects.get(job_id=body["job_id"]) for _, body in answers]
        late_watchers = [watchers.watch(f"job:{j.job_id}", reads_record=True) for j in late]
        everything = jobs + late

        # then the records stand, every job ends DONE once, every watcher on DONE, Redis
        # shows DONE for each, and the queue empties
        wait_for(lambda: _statuses(everything) == ["DONE"] * len(everything), timeout=90)
        wait_for(lambda: watchers.statuses() == ["DONE"] * len(everything), timeout=40)
        wait_for(lambda: queue_counts() == (0, 0), timeout=30, every=0.2)
        not_found = sum(w.record_reads > 0 for w in late_watchers)
        outcome = _outcome(
            "Redis blackholed 30 s while jobs run, finish and are created",
            stack,
            alpha_staff,
            everything,
            watchers,
            healed_at,
        )
        outcome.notes = (
            f"blackhole {blackholed:.1f} s (server, worker and relay behind it); "
            f"at its end {statuses_in_hole.count('DONE')} of {BLACKHOLE_JOBS} jobs were done "
            f"and {statuses_in_hole.count('PROCESSING')} running; "
            f"{CREATED_IN_HOLE} jobs created through the API inside it answered 202 PENDING in "
            f"{mean_create:.2f} s on average, and {not_found} of their sockets, opened right "
            f"after it, answered not_found (the PENDING publish was lost; the record read "
            f"repairs it); seconds from Redis answering again until records, watchers, Redis "
            f"and queue were right"
        )
        report(outcome)
        assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
        assert statuses_in_hole.count("DONE") >= 1  # finishes happened inside the hole
    finally:
        watchers.stop()
