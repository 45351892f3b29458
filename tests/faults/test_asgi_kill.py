"""An ASGI server process SIGKILLed with 1,000 sockets attached while jobs run; a replacement
starts on the same address (issue 10's fault suite).

The sockets belong to 1,000 instances of the project's own browser client (frontend-client,
built into dist/), run in one Node process by ``browser_clients.mjs``: each reconnects with
its full-jitter backoff, falls back to HTTP polling while the socket is down, and resubscribes
with the (epoch, seq) it holds (PROTOCOL.md §4, §6). What must hold: every client gets its
job's terminal state exactly once, none is left without it, and every record ends DONE once.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from domains.jobs.models import Job, JobResult
from tests.faults.stack import FaultStack, queue_counts
from tests.faults.support import BASE_DIR, Outcome, Process, report, wait_for
from tests.support.members import Member

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

JOBS, PER_JOB, RECIPIENTS = 20, 50, 60  # 1,000 sockets; a job runs about 18 s, two waves
CLIENTS = JOBS * PER_JOB
SCRIPT = Path(__file__).with_name("browser_clients.mjs")
DIST = BASE_DIR / "frontend-client" / "dist"


def _clients(process: Process) -> dict[str, Any]:
    """The last summary the Node process printed (empty before the first)."""
    lines = [line for line in process.output().splitlines() if line.startswith("CLIENTS ")]
    return dict(json.loads(lines[-1].removeprefix("CLIENTS "))) if lines else {}


def _statuses(jobs: list[Job]) -> list[str]:
    by_id = dict(
        Job.objects.filter(job_id__in=[j.job_id for j in jobs]).values_list("job_id", "status")
    )
    return [by_id[j.job_id] for j in jobs]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node runs the browser clients")
def test_asgi_process_killed_with_1000_sockets_attached_and_replaced(
    stack: FaultStack, alpha_staff: Member
) -> None:
    assert (DIST / "index.js").exists(), "build the client first: make client"
    # given the server and the relay, twenty queued jobs, and 1,000 browser clients (fifty per
    # job) connected and holding each job's PENDING state; then two workers start them (ten
    # at a time: the second wave outlasts the clients' reconnect backoff)
    # (one user holds every socket here: the per-user cap is lifted, and a killed process's
    # slots stay counted until they expire, REALTIME_CONNECTION_TTL)
    stack.processes.env["REALTIME_MAX_CONNECTIONS_PER_USER"] = str(4 * CLIENTS)
    port = stack.server()
    stack.relay()
    jobs = [stack.create_job(alpha_staff, RECIPIENTS) for _ in range(JOBS)]
    config = {
        "dist": DIST.as_uri(),
        "baseUrl": f"http://127.0.0.1:{port}",
        "token": alpha_staff.access_token(),
        "topics": [f"job:{j.job_id}" for j in jobs],
        "perTopic": PER_JOB,
    }
    clients = stack.processes.spawn(
        "clients",
        [str(shutil.which("node")), "--experimental-websocket", str(SCRIPT), json.dumps(config)],
    )
    connect_started = time.monotonic()
    wait_for(
        lambda: (
            _clients(clients).get("connection", {}).get("connected") == CLIENTS
            and _clients(clients).get("status", {}).get("PENDING") == CLIENTS
        ),
        timeout=300,
        every=0.25,
    )
    connect_seconds = time.monotonic() - connect_started
    stack.worker()
    stack.worker()
    wait_for(lambda: len(stack.sent()) >= 20, timeout=90, every=0.05)

    # when the server process is SIGKILLed (no close frames: the sockets just die), and a
    # replacement starts on the same address
    server = next(p for p in stack.processes.started if p.name == "server")
    before = _statuses(jobs)
    server.kill()
    killed_at = time.monotonic()
    stack.processes.server(port, REALTIME_ALLOWED_ORIGINS=f"http://127.0.0.1:{port}")
    back_at, back_wall = time.monotonic(), time.time()
    down = back_at - killed_at

    # then every job ends DONE once, every client gets its terminal state exactly once (none
    # lost, whether it finished while the server was away or after), and the queue empties
    wait_for(lambda: _statuses(jobs) == ["DONE"] * JOBS, timeout=180, every=0.2)
    wait_for(lambda: _clients(clients).get("done") == CLIENTS, timeout=120, every=0.25)
    converged = time.monotonic() - back_at
    wait_for(lambda: queue_counts() == (0, 0), timeout=30, every=0.2)
    time.sleep(1)  # a duplicate terminal state would arrive within the next summaries
    seen = _clients(clients)
    finished = Job.objects.filter(job_id__in=[j.job_id for j in jobs]).values_list(
        "finished_at", flat=True
    )
    finished_while_down = sum(1 for f in finished if f is not None and f.timestamp() < back_wall)
    results = JobResult.objects.filter(job__job_id__in=[j.job_id for j in jobs]).count()
    outcome = Outcome(
        scenario="ASGI process SIGKILLed with 1,000 sockets attached, replaced on its address",
        jobs=JOBS,
        watchers=CLIENTS,
        lost=(CLIENTS - int(seen["done"]))
        + sum(stack.redis_status(alpha_staff, j) != "DONE" for j in jobs),
        duplicated=int(seen["done_twice"]) + max(0, results - JOBS),
        stuck=sum(s != "DONE" for s in _statuses(jobs)),
        seconds_to_converge=converged,
        notes=(
            f"1,000 project browser clients (Node) connected in {connect_seconds:.1f} s; at the "
            f"kill {before.count('PROCESSING')} jobs running, {before.count('DONE')} done; "
            f"replacement listening {down:.1f} s after the kill; {seen['reconnected']} clients "
            f"reconnected, {seen['resubscribes']} subscribes carried (epoch, seq); terminal "
            f"states by {seen.get('done_via')}; "
            f"{finished_while_down} jobs finished while no server listened; seconds "
            f"from the replacement listening until every client had its terminal state"
        ),
    )
    report(outcome)
    assert (outcome.lost, outcome.duplicated, outcome.stuck) == (0, 0, 0)
    # and the clients came back the way a browser does: reconnecting with (epoch, seq), or
    # (a job that ended while the socket was away) reading the terminal state over HTTP
    assert seen["reconnected"] > 0
    assert seen["resubscribes"] >= seen["reconnected"]
