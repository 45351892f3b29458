"""Worker benchmarks, one command:

    python bench/workers/run.py [--jobs 600] [--latency-jobs 200]

1. Throughput: no-op jobs through one worker process at its cap (5 slots), against the same
   process with 1 slot as the baseline measured in the same run. The queue is filled first;
   the rate is jobs / (last finished_at - first started_at), read from the job rows.
2. End-to-end latency: POST /api/v1/jobs/ (``messaging.send``, one recipient, locmem email)
   to the DONE frame at a WebSocket client, through daphne and a ``manage.py run_worker``
   process, one job at a time; p50/p90/p99.

Uses its own database (``academy_bench_workers``), Redis database 13 with a key prefix, and
its own moto server, so it never touches ``make demo`` or test runs. Writes
``bench/workers/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from project import devservices  # noqa: E402
from realtime.identity import Caller  # noqa: E402 - pure logic, no Django

RESULTS = Path(__file__).with_name("RESULTS.md")
LOGS = Path(tempfile.mkdtemp(prefix="bench-workers-"))
SUBSCRIPTIONS_PER_SOCKET = 90  # PROTOCOL.md §4: at most 100 per connection


def _environment() -> dict[str, str]:
    os.environ.setdefault(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/academy_bench_workers"
    )
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.setdefault("REALTIME_KEY_PREFIX", "benchw:")
    os.environ.setdefault("DJANGO_ENV", "dev")
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ["LOG_LEVEL"] = "WARNING"
    services = devservices.ensure_services(with_moto=True)
    os.environ.update(services.env)
    os.environ["PYTHONPATH"] = str(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    return dict(os.environ)


def _spawn(args: list[str], name: str, **env: str) -> subprocess.Popen[bytes]:
    log = (LOGS / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    devservices.stop_process(process, timeout=40)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_jobs() -> None:
    from domains.jobs.models import Job

    Job.objects.all().delete()


def unit_costs(rounds: int = 100) -> dict[str, float]:
    """What one job's steps cost here, measured in this run (ms per call, median)."""
    import uuid

    import psycopg
    from django.db import connection

    from domains.common.aws import sqs_client
    from domains.jobs.dispatch import queue_urls_forget
    from realtime import store
    from realtime.keys import Topic
    from realtime.state import Change

    def median_ms(call: object) -> float:
        timings = []
        for _ in range(rounds):
            start = time.perf_counter()
            call()  # type: ignore[operator]
            timings.append((time.perf_counter() - start) * 1000)
        return statistics.median(timings)

    url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)

    def fresh_connection() -> None:
        # What a worker's job thread pays: no pool, a new server process per connection.
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1")

    def open_connection() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    sqs = sqs_client()
    probe = sqs.create_queue(QueueName="bench-probe")["QueueUrl"]
    topic = Topic.job(uuid.uuid4())
    store.publish(0, topic, Change(status="PENDING"))
    costs = {
        "db_fresh": median_ms(fresh_connection),
        "db_open": median_ms(open_connection),
        "sqs_send": median_ms(lambda: sqs.send_message(QueueUrl=probe, MessageBody="x")),
        "sqs_receive": median_ms(lambda: sqs.receive_message(QueueUrl=probe, WaitTimeSeconds=0)),
        "redis_publish": median_ms(
            lambda: store.publish(0, topic, Change(status="PROCESSING", attempt=1))
        ),
    }
    sqs.delete_queue(QueueUrl=probe)
    connection.close()
    queue_urls_forget()
    return costs


def throughput(caller: Caller, jobs: int, concurrency: int) -> dict[str, float]:
    from django.db.models import Max, Min

    from domains.jobs import services
    from domains.jobs.models import Job

    sys.path.insert(0, str(Path(__file__).parent))
    from noop_worker import NOOP, register

    register()
    _reset_jobs()  # the queue is empty too: the previous run deleted every message it finished
    for _ in range(jobs):
        services.job_create(caller.tenant_id, caller=caller, job_type=NOOP, payload={})
    started = time.monotonic()
    worker = _spawn(
        ["bench/workers/noop_worker.py", "--concurrency", str(concurrency)],
        f"noop-{concurrency}",
    )
    own_cpu = time.process_time()  # this process hosts moto's server
    try:
        while Job.objects.filter(status="DONE").count() < jobs:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited; see {LOGS}")
            time.sleep(0.2)
        wall = time.monotonic() - started
        worker_cpu = _cpu_seconds(worker.pid)
        moto_cpu = time.process_time() - own_cpu
    finally:
        _stop(worker)
    span = Job.objects.aggregate(first=Min("started_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    return {
        "jobs": jobs,
        "seconds": seconds,
        "rate": jobs / seconds,
        "wall": wall,
        "worker_cpu_ms": worker_cpu * 1000 / jobs,
        "moto_cpu_ms": moto_cpu * 1000 / jobs,
    }


def latency(token: str, jobs: int, warmup: int = 10) -> dict[str, float]:
    from websockets.sync.client import connect
    from websockets.typing import Subprotocol

    port = devservices.free_port()
    server = _spawn(
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
        "daphne",
    )
    worker = _spawn(["manage.py", "run_worker", "--queue", "messaging"], "worker-latency")
    samples, posts = [], []
    try:
        deadline = time.monotonic() + 30
        while not devservices.port_open("127.0.0.1", port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start; see {LOGS}")
            time.sleep(0.2)
        time.sleep(2)  # the worker's first long poll is open
        http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps(
            {
                "job_type": "messaging.send",
                "payload": {"subject": "s", "body": "b", "recipients": ["a@example.com"]},
            }
        )
        subprotocols = [Subprotocol("realtime.v1"), Subprotocol(f"bearer.{token}")]
        url = f"ws://127.0.0.1:{port}/ws/v1/"
        total = warmup + jobs
        # One frame per job keeps well under the socket's rate limit; a fresh socket (opened
        # outside the measured window) before the 100-subscription limit.
        for first in range(0, total, SUBSCRIPTIONS_PER_SOCKET):
            with connect(url, subprotocols=subprotocols) as socket:
                for index in range(first, min(total, first + SUBSCRIPTIONS_PER_SOCKET)):
                    t0 = time.perf_counter()
                    http_conn.request("POST", "/api/v1/jobs/", body=body, headers=headers)
                    response = http_conn.getresponse()
                    created = json.loads(response.read())
                    t_post = time.perf_counter()
                    if response.status != 202:
                        raise RuntimeError(f"POST answered {response.status}: {created}")
                    socket.send(json.dumps({"type": "subscribe", "topic": created["topic"]}))
                    while True:
                        frame = json.loads(socket.recv(timeout=30))
                        if frame.get("type") == "error":
                            raise RuntimeError(f"WebSocket error frame: {frame}")
                        if frame.get("topic") == created["topic"] and frame["status"] == "DONE":
                            break
                    t_done = time.perf_counter()
                    if index >= warmup:
                        samples.append((t_done - t0) * 1000)
                        posts.append((t_post - t0) * 1000)
    finally:
        _stop(worker)
        _stop(server)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "jobs": len(samples),
        "p50": statistics.median(samples),
        "p90": cuts[89],
        "p99": cuts[98],
        "max": max(samples),
        "post_p50": statistics.median(posts),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=600)
    parser.add_argument("--baseline-jobs", type=int, default=200)
    parser.add_argument("--latency-jobs", type=int, default=200)
    args = parser.parse_args()
    _environment()
    import django

    django.setup()
    from django.core.management import call_command

    from domains.tenants import repository
    from domains.tenants.services import auth_token_issue
    from realtime.auth import caller_from_access_token
    from realtime.identity import Role

    call_command("migrate", "--noinput", verbosity=0)
    call_command("create_queues", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    tenant = repository.tenant_upsert(code="bench", name="Bench Academy")
    password = "bench1234"  # noqa: S105 - a throwaway user in the benchmark's own database
    repository.member_upsert(tenant.id, username="bench-staff", password=password, role=Role.STAFF)
    token = auth_token_issue(tenant_code="bench", username="bench-staff", password=password).access
    caller = caller_from_access_token(token)

    print(f"logs in {LOGS}")
    costs = unit_costs()
    print("throughput, 1 slot (baseline) ...", flush=True)
    base = throughput(caller, args.baseline_jobs, 1)
    print(f"  {base['rate']:.1f} jobs/s")
    print("throughput, 5 slots (the cap) ...", flush=True)
    capped = throughput(caller, args.jobs, 5)
    print(f"  {capped['rate']:.1f} jobs/s")
    print("end-to-end latency ...", flush=True)
    lat = latency(token, args.latency_jobs)
    print(f"  p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
    _reset_jobs()

    machine = (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    RESULTS.write_text(
        "\n".join(
            [
                "# Worker benchmarks",
                "",
                f"`python bench/workers/run.py` on {datetime.now(UTC):%Y-%m-%d} ({machine}).",
                "PostgreSQL and Redis local, SQS = moto's server (in the benchmark process),",
                "one worker process; every job does a claim and a finish transaction, two Redis",
                "publishes (PROCESSING, DONE), an SQS receive and delete.",
                "",
                "| measurement | result |",
                "| --- | --- |",
                f"| no-op jobs/s, one worker process, 5 slots (cap), {capped['jobs']} jobs | "
                f"**{capped['rate']:.1f}** ({capped['seconds']:.1f} s) |",
                f"| no-op jobs/s, same process, 1 slot (baseline), {base['jobs']} jobs | "
                f"{base['rate']:.1f} ({base['seconds']:.1f} s) |",
                f"| speed-up of 5 slots over 1 | {capped['rate'] / base['rate']:.2f}x |",
                "| CPU per job, worker process / benchmark process (moto's server), 5 slots | "
                f"{capped['worker_cpu_ms']:.1f} / {capped['moto_cpu_ms']:.1f} ms |",
                f"| same, 1 slot | {base['worker_cpu_ms']:.1f} / {base['moto_cpu_ms']:.1f} ms |",
                "| POST /api/v1/jobs/ to DONE frame at a WebSocket client, p50 "
                f"({lat['jobs']:.0f} jobs, one at a time) | **{lat['p50']:.1f} ms** |",
                "| same, p90 / p99 / max | "
                f"{lat['p90']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms |",
                f"| of which POST answered (202), p50 | {lat['post_p50']:.1f} ms |",
                "",
                "What one job's steps cost on this machine, same run (median of 100 calls):",
                "",
                "| step | ms |",
                "| --- | --- |",
                f"| PostgreSQL: connect, `SELECT 1`, close (a job does this twice) | "
                f"{costs['db_fresh']:.2f} |",
                f"| PostgreSQL: `SELECT 1` on an open connection | {costs['db_open']:.2f} |",
                f"| SQS (moto) SendMessage | {costs['sqs_send']:.2f} |",
                f"| SQS (moto) ReceiveMessage, empty, no wait | {costs['sqs_receive']:.2f} |",
                f"| Redis publish (state script, one round trip) | {costs['redis_publish']:.2f} |",
                "",
                f"Load average when the run ended: {os.getloadavg()[0]:.2f} "
                "(other benchmarks may share the machine; compare ratios, not absolutes).",
                "",
                "Reading these numbers: a no-op job costs about 20 ms of worker CPU, as much",
                "again in moto's server, and two PostgreSQL backend starts (the job thread",
                "closes its connection after the claim so that none is held while a job runs).",
                "On two shared CPUs that makes the run CPU-bound, so extra slots add little for",
                "no-op jobs. Slots are for jobs that wait (inference, ffmpeg, SMTP); the",
                "concurrency tests show five of those run at once.",
                "",
                "The latency job is `messaging.send` with one recipient (locmem email backend),",
                "served by daphne and a `manage.py run_worker --queue messaging` process that is",
                "already long-polling, so it is the pipeline's own delay: HTTP, commit, Redis,",
                "SQS, claim, run, finish, publish, WebSocket push.",
                "",
            ]
        )
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
