"""PostgreSQL restarted while jobs are claimed and finished and sockets watch them (issue 10's
fault suite).

A private PostgreSQL cluster of its own (initdb and pg_ctl from /usr/lib/postgresql, a temporary
directory, a free port; as the ``postgres`` user when the suite runs as root), migrated and
seeded by the real ``manage.py migrate`` and ``seed_demo``; the server, the worker and the
relay all use it. The machine's shared PostgreSQL is never touched. The restart is
``pg_ctl stop -m immediate`` (no checkpoint: crash recovery at the next start), a few seconds
down, then ``start``. What must hold: the records end DONE, one result row each, every watcher
on DONE, nothing left in the queue.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.faults.stack import FaultStack, queue_counts
from tests.faults.support import Outcome, PostgresCluster, Watchers, report, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

JOBS, RECIPIENTS = 10, 8
DOWN_SECONDS = 5.0
DEMO = {"tenant": "alpha", "username": "alpha-staff", "password": "demo1234"}  # seed_demo's


@dataclass
class AcademyDatabase:
    """The application's database in the private cluster, read by plain SQL from the test."""

    cluster: PostgresCluster
    name: str = "academy"

    def url(self) -> str:
        return self.cluster.url(self.name)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(), connect_timeout=5, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def statuses(self, job_ids: Sequence[str]) -> list[str]:
        found = dict(
            self.rows(
                "SELECT job_id::text, status FROM jobs_job WHERE job_id::text = ANY(%s)", [job_ids]
            )
        )
        return [found.get(job_id, "missing") for job_id in job_ids]

    def answers(self) -> bool:
        try:
            self.rows("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True


@pytest.fixture
def academy(stack: FaultStack, private_postgres: PostgresCluster) -> AcademyDatabase:
    """The private cluster, migrated and seeded; every process of the stack started from now
    on uses it."""
    database = AcademyDatabase(private_postgres)
    with psycopg.connect(private_postgres.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database.name}"')
    stack.processes.env["DATABASE_URL"] = database.url()
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        process = stack.processes.spawn(command[0], [sys.executable, "manage.py", *command])
        assert process.popen.wait(timeout=300) == 0, process.output()[-3000:]
    return database


def _request(port: int, path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def test_postgres_restarted_while_jobs_are_claimed_and_finished(
    stack: FaultStack, academy: AcademyDatabase
) -> None:
    # given the server, the relay and one worker (five slots) on the private cluster, ten jobs
    # created through the API, each watched, the first five half-way through
    port = stack.server()
    stack.relay()
    token = str(_request(port, "/api/v1/auth/token/", DEMO)["access"])
    job_ids = [
        str(
            _request(
                port,
                "/api/v1/jobs/",
                {
                    "job_type": "messaging.send",
                    "payload": {
                        "subject": "Fault drill",
                        "body": "Class at ten.",
                        "recipients": [f"s{i}@example.com" for i in range(RECIPIENTS)],
                    },
                },
                token,
            )["job_id"]
        )
        for _ in range(JOBS)
    ]
    watchers = Watchers(f"ws://127.0.0.1:{port}/ws/v1/", token, f"http://127.0.0.1:{port}")
    try:
        for job_id in job_ids:
            watchers.watch(f"job:{job_id}")
        worker = stack.worker()
        wait_for(lambda: len(stack.sent()) >= 5 * RECIPIENTS // 2, timeout=90, every=0.02)

        # when PostgreSQL crashes (immediate stop) and comes back after five seconds, while
        # the first jobs finish and the next ones are claimed
        before = academy.statuses(job_ids)
        stopped_at = time.monotonic()
        academy.cluster.stop(mode="immediate")
        sent_while_down = len(stack.sent())
        time.sleep(DOWN_SECONDS)
        sent_while_down = len(stack.sent()) - sent_while_down
        academy.cluster.start()
        back_at = time.monotonic()
        down = back_at - stopped_at

        # then every job ends DONE with one result row, every watcher on DONE, Redis on DONE,
        # the queue empty, and the worker, server and relay still running
        wait_for(lambda: academy.statuses(job_ids) == ["DONE"] * JOBS, timeout=120, every=0.2)
        wait_for(lambda: watchers.statuses() == ["DONE"] * JOBS, timeout=30)
        wait_for(lambda: queue_counts() == (0, 0), timeout=30, every=0.2)
        converged = time.monotonic() - back_at
        tenant_id = academy.rows("SELECT id FROM tenants_tenant WHERE code = %s", ["alpha"])[0][0]
        in_redis = [
            stack.redis.client().hget(f"tenant:{tenant_id}:job:{job_id}:status", "status")
            for job_id in job_ids
        ]
        results = academy.rows(
            "SELECT count(*) FROM jobs_jobresult r JOIN jobs_job j ON j.id = r.job_id "
            "WHERE j.job_id::text = ANY(%s)",
            [job_ids],
        )[0][0]
        attempts = academy.rows(
            "SELECT coalesce(sum(attempt), 0) FROM jobs_job WHERE job_id::text = ANY(%s)", [job_ids]
        )[0][0]
        sent = stack.sent()
        resent = len(sent) - JOBS * RECIPIENTS
        alive = [p.name for p in stack.processes.started if p.popen.poll() is None]
        outcome = Outcome(
            scenario="PostgreSQL restarted (immediate stop, 5 s down) during claims and finishes",
            jobs=JOBS,
            watchers=len(watchers.watchers),
            lost=sum(s != "DONE" for s in watchers.statuses())
            + sum(status != b"DONE" for status in in_redis),
            duplicated=max(0, int(results) - JOBS),
            stuck=sum(s != "DONE" for s in academy.statuses(job_ids)),
            seconds_to_converge=converged,
            notes=(
                f"{before.count('DONE')} done and {before.count('PROCESSING')} running at the "
                f"stop; down {down:.1f} s ({sent_while_down} emails went out meanwhile); "
                f"{attempts} attempts for {JOBS} jobs, {resent} emails sent again (a job whose "
                f"finish failed runs again: at least once); seconds from PostgreSQL answering "
                f"again until records, watchers, Redis and queue were right"
            ),
        )
        report(outcome)
        assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
        assert {"server", "relay", "worker-messaging"} <= set(alive), stack.processes.tails()
        assert worker.popen.poll() is None
    finally:
        watchers.stop()
