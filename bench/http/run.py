"""HTTP progress-endpoint benchmark, one command:

    python -m bench.http.run [--quick] [--rounds 6] [--seconds 4] [--concurrency 32]

Requests/s and latency of ``GET /api/v1/jobs/{id}/progress/`` (Redis only) against, on the same
server process and in the same run, interleaved in rounds:
  * noop: a view with the progress endpoint's own authentication (stateless JWT) answering a
    constant state document: progress / noop isolates the Redis read;
  * noop-noauth: the same constant document without the token check;
  * detail: ``GET /api/v1/jobs/{id}/`` (DRF, PostgreSQL).
Each server (daphne, then uvicorn with uvloop and httptools) runs as one process with the bench
settings (``bench.http.settings``). The issue's target: progress >= 0.8x the no-op view.

Zero SQL is checked twice: the server counts every statement it executes (an execute wrapper on
each connection, read through ``/bench/sql/`` between windows), and PostgreSQL shows no backend
of the server's on the bench database after a progress-only window (before any other request).

Uses its own database (``bench_http``) and Redis database 10 with a key prefix. ``--quick`` is
a smoke run that prints its tables; a full run also rewrites the measured block of
``bench/http/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

from bench.http.load import Check, Outcome, Pool, Target, build_request, new_event_loop

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_name("RESULTS.md")
LOGS = Path(tempfile.mkdtemp(prefix="bench-http-"))
BEGIN, END = "<!-- measured:begin -->", "<!-- measured:end -->"
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_http"
HOST = "127.0.0.1"
TENANT_CODE = "bench-http"
USERNAME = "bench-http-staff"
PASSWORD = "bench-http-1234"  # noqa: S105 - a throwaway user in the benchmark's own database
ORDER = ("progress", "progress-django", "noop", "noop-noauth", "detail")
# Beside the uvicorn server, in processes of their own and loaded in the same rounds: the raw
# ASGI ceiling (bench/http/raw.py, no Django), and with --before the progress endpoint of
# another checkout (the commit before a change, in a second worktree).
RAW, BEFORE = "raw", "progress-before"
# Servers run with the project's database settings (the psycopg pool), not the seeder's.
SERVER_ENV = {"DB_POOL": "true", "CONN_MAX_AGE": "0"}
# name: (server, extra environment). "-lean" drops the project's sync middleware (bench only).
SERVERS = {
    "daphne": ("daphne", {}),
    "uvicorn": ("uvicorn", {}),
    "uvicorn-lean": ("uvicorn", {"BENCH_HTTP_MIDDLEWARE": "lean"}),
}


@dataclass(frozen=True)
class Seed:
    """What the benchmark created: a token and the jobs' ids (half running, half done)."""

    token: str
    job_ids: list[str]


@dataclass
class Server:
    """A benchmark server: how to start it, and what was measured against it."""

    name: str
    argv: list[str]
    windows: dict[str, list[Outcome]] = field(default_factory=dict)
    client_cpu: dict[str, float] = field(default_factory=dict)
    server_cpu: dict[str, float] = field(default_factory=dict)
    redis_cpu: dict[str, float] = field(default_factory=dict)
    statements: dict[str, int] = field(default_factory=dict)
    backends_after_progress: int = -1
    backends_after_detail: int = -1
    order: tuple[str, ...] = ORDER


def _environment() -> None:
    os.environ.setdefault("DATABASE_URL", DATABASE_URL)
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
    os.environ.setdefault("REALTIME_KEY_PREFIX", "benchh:")
    os.environ["DJANGO_ENV"] = "dev"
    os.environ["DEBUG"] = "false"  # as in production: no query log, no debug pages
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["ACCESS_TOKEN_LIFETIME_SECONDS"] = "7200"  # noqa: S105 - a lifetime
    os.environ["PYTHONPATH"] = str(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.http.settings"
    # This process only seeds; it must hold no pooled connection to the bench database while
    # PostgreSQL is asked which backends the server opened.
    os.environ["DB_POOL"] = "false"
    os.environ["CONN_MAX_AGE"] = "0"


def _maintenance_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)


def _database_name() -> str:
    return urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")


def backends_on_bench_database() -> int:
    """Server processes' connections to the bench database (asked from another database)."""
    import psycopg

    with psycopg.connect(_maintenance_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [_database_name()]
        ).fetchone()
    return int(row[0]) if row else 0


def seed(jobs: int) -> Seed:
    """A tenant, a staff user, ``jobs`` job rows (odd ones DONE with a JobResult) and their
    Redis state through the real publish path."""
    from django.core.management import call_command
    from django.db import connections

    from domains.jobs.models import Job, JobResult
    from domains.tenants import repository
    from domains.tenants.services import auth_token_issue
    from project import devservices
    from realtime import store
    from realtime.clients import sync_redis
    from realtime.identity import Role
    from realtime.keys import Topic
    from realtime.state import Change, Progress

    devservices.ensure_database_exists(os.environ["DATABASE_URL"])
    call_command("migrate", "--noinput", verbosity=0)
    tenant = repository.tenant_upsert(code=TENANT_CODE, name="Bench HTTP Academy")
    user = repository.member_upsert(
        tenant.id, username=USERNAME, password=PASSWORD, role=Role.STAFF
    )
    token = auth_token_issue(tenant_code=TENANT_CODE, username=USERNAME, password=PASSWORD).access
    Job.objects.filter(tenant=tenant).delete()
    redis = sync_redis()
    for key in redis.scan_iter(match=f"{os.environ['REALTIME_KEY_PREFIX']}*", count=1000):
        redis.delete(key)
    job_ids = []
    for index in range(jobs):
        done = index % 2 == 1
        job = Job.objects.create(
            tenant=tenant,
            job_type="messaging.send",
            status="DONE" if done else "PROCESSING",
            attempt=1,
            created_by=user,
            payload={"subject": "s", "body": "b", "recipients": ["a@example.com"] * 3},
        )
        topic = Topic.job(job.job_id)
        store.publish(
            tenant.id, topic, Change(status="PENDING", owner_id=user.id, job_type=job.job_type)
        )
        store.publish(
            tenant.id,
            topic,
            Change(
                status="PROCESSING",
                attempt=1,
                progress=Progress(
                    percent=42,
                    step="sending",
                    step_index=2,
                    step_total=3,
                    step_name_display="메시지 발송",
                    step_percent=40,
                    remaining_seconds=12,
                ),
            ),
        )
        if done:
            result = {"sent": 3, "failed": 0}
            JobResult.objects.create(job=job, data=result)
            store.publish(tenant.id, topic, Change(status="DONE", attempt=1, result=result))
        job_ids.append(str(job.job_id))
    connections.close_all()
    return Seed(token=token, job_ids=job_ids)


def _check_json(predicate: Callable[[dict[str, object]], bool]) -> Check:
    def check(body: bytes) -> bool:
        try:
            document = json.loads(body)
        except ValueError:
            return False
        return isinstance(document, dict) and predicate(document)

    return check


def targets(
    port: int, data: Seed, *, raw_port: int | None = None, before_port: int | None = None
) -> dict[str, Target]:
    """The endpoints, each answer checked for its own shape.

    ``progress`` is the public URL, which the ASGI fast path (realtime/fastpath.py) answers in
    front of Django; ``progress-django`` is the same view reached through Django's middleware
    and URL resolver (a bench-only URL), i.e. what the public URL cost before the fast path.
    """
    host = f"{HOST}:{port}"

    def progress_check(job_id: str) -> Check:
        topic = f"job:{job_id}"
        return _check_json(
            lambda d: (
                d.get("topic") == topic
                and isinstance(d.get("seq"), int)
                and d.get("status") in {"PROCESSING", "DONE"}
                and "progress" in d
            )
        )

    def detail_check(job_id: str) -> Check:
        return _check_json(
            lambda d: d.get("job_id") == job_id and d.get("status") in {"PROCESSING", "DONE"}
        )

    noop_check = _check_json(lambda d: d.get("status") == "PROCESSING" and "seq" in d)
    ids = data.job_ids
    companions = {}
    if raw_port is not None:
        raw_host = f"{HOST}:{raw_port}"
        companions[RAW] = Target(
            RAW,
            [build_request(raw_host, f"/api/v1/jobs/{i}/progress/", data.token) for i in ids],
            [noop_check] * len(ids),
        )
    if before_port is not None:
        before_host = f"{HOST}:{before_port}"
        companions[BEFORE] = Target(
            BEFORE,
            [build_request(before_host, f"/api/v1/jobs/{i}/progress/", data.token) for i in ids],
            [progress_check(i) for i in ids],
        )
    return {
        **companions,
        "progress": Target(
            "progress",
            [build_request(host, f"/api/v1/jobs/{i}/progress/", data.token) for i in ids],
            [progress_check(i) for i in ids],
        ),
        "progress-django": Target(
            "progress-django",
            [build_request(host, f"/bench/progress-django/{i}/", data.token) for i in ids],
            [progress_check(i) for i in ids],
        ),
        "noop": Target(
            "noop",
            [build_request(host, "/bench/noop/", data.token)] * len(ids),
            [noop_check] * len(ids),
        ),
        "noop-noauth": Target(
            "noop-noauth", [build_request(host, "/bench/noop-noauth/", None)], [noop_check]
        ),
        "detail": Target(
            "detail",
            [build_request(host, f"/api/v1/jobs/{i}/", data.token) for i in ids],
            [detail_check(i) for i in ids],
        ),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_server_pid() -> int | None:
    """The pid of the redis-server the bench reads (INFO), if its /proc entry is readable:
    its CPU per request is the other half of a progress request's cost."""
    from realtime.clients import sync_redis

    pid = int(sync_redis().info("server")["process_id"])
    try:
        cpu_seconds(pid)
    except OSError:
        return None
    return pid


@contextmanager
def running(
    argv: list[str],
    name: str,
    port: int,
    extra_env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait for /health/, stop it with SIGINT (then kill) after."""
    import http.client

    from project import devservices

    log = (LOGS / f"{name}.log").open("wb")
    env = {**os.environ, **SERVER_ENV, **(extra_env or {})}
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited; see {LOGS / (name + '.log')}")
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=2)
                conn.request("GET", "/health/")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer /health/; see {LOGS}")
            time.sleep(0.2)
        yield process
    finally:
        devservices.stop_process(process, sig=signal.SIGINT, timeout=30)
        log.close()


def server_argv(
    kind: str, port: int, *, profile: Path | None = None, app: str = "project.asgi:application"
) -> list[str]:
    """One worker process of daphne or uvicorn serving an ASGI application (the project's).

    uvicorn runs with infra/asgi's HTTP options (uvloop, httptools, proxy headers from
    127.0.0.1, no access log, no lifespan).
    """
    if kind == "daphne":
        args = ["-m", "daphne", "-b", HOST, "-p", str(port), app]
    else:
        args = [
            "-m",
            "uvicorn",
            app,
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--proxy-headers",
            "--forwarded-allow-ips",
            "127.0.0.1",
            "--lifespan",
            "off",
        ]
    if profile is not None:
        args = ["-m", "cProfile", "-o", str(profile), *args]
    return [sys.executable, *args]


async def _statements(pool: Pool, port: int) -> int:
    status, body = await pool.get(build_request(f"{HOST}:{port}", "/bench/sql/", None))
    if status != 200:
        raise RuntimeError(f"/bench/sql/ answered {status}")
    return int(json.loads(body)["statements"])


async def measure(
    server: Server,
    pid: int,
    port: int,
    data: Seed,
    *,
    rounds: int,
    seconds: float,
    warmup: float,
    concurrency: int,
    companions: dict[str, tuple[int, int]] | None = None,
) -> None:
    """Zero-SQL check, warm-up, then ``rounds`` of every target, in alternating order.

    ``companions``: target name (RAW, BEFORE) -> (pid, port) of the process serving it; each
    gets its own connections, and its CPU is read from its own process.
    """
    companions = companions or {}
    plan = targets(
        port,
        data,
        raw_port=companions[RAW][1] if RAW in companions else None,
        before_port=companions[BEFORE][1] if BEFORE in companions else None,
    )
    server.order = (*ORDER, *(name for name in (RAW, BEFORE) if name in companions))
    pool = Pool(HOST, port, concurrency)
    pools = {name: Pool(HOST, p, concurrency) for name, (_pid, p) in companions.items()}
    pids = {name: companion_pid for name, (companion_pid, _p) in companions.items()}
    redis_pid = redis_server_pid()
    try:
        # 1. Before anything else reaches this fresh server: progress only, then ask PostgreSQL.
        await pool.run(plan["progress"], max(warmup, 1.0))
        server.backends_after_progress = backends_on_bench_database()
        # 2. Warm-up of every target (the detail endpoint opens the server's database pool).
        for name in server.order:
            await pools.get(name, pool).run(plan[name], warmup)
        server.backends_after_detail = backends_on_bench_database()
        # 3. Rounds: A B C D, D C B A, ... so drift and position hit every target alike.
        for number in range(rounds):
            order = server.order if number % 2 == 0 else tuple(reversed(server.order))
            for name in order:
                await pools.get(name, pool).prime(plan[name])
                before_sql = await _statements(pool, port)
                target_pid = pids.get(name, pid)
                client_before, server_before = time.process_time(), cpu_seconds(target_pid)
                redis_before = cpu_seconds(redis_pid) if redis_pid else 0.0
                outcome = await pools.get(name, pool).run(plan[name], seconds)
                client_used = time.process_time() - client_before
                server_used = cpu_seconds(target_pid) - server_before
                redis_used = cpu_seconds(redis_pid) - redis_before if redis_pid else 0.0
                after_sql = await _statements(pool, port)
                server.windows.setdefault(name, []).append(outcome)
                server.client_cpu[name] = server.client_cpu.get(name, 0.0) + client_used
                server.server_cpu[name] = server.server_cpu.get(name, 0.0) + server_used
                server.redis_cpu[name] = server.redis_cpu.get(name, 0.0) + redis_used
                server.statements[name] = server.statements.get(name, 0) + after_sql - before_sql
            print(f"  {server.name}: round {number + 1}/{rounds} done", flush=True)
    finally:
        pool.close()
        for companion in pools.values():
            companion.close()


def profile_progress(data: Seed, seconds: float, concurrency: int) -> str:
    """uvicorn under cProfile while only the progress endpoint is loaded: where time goes."""
    port = _free_port()
    output = LOGS / "uvicorn-progress.prof"
    with running(server_argv("uvicorn", port, profile=output), "uvicorn-profile", port):
        loop = new_event_loop()
        pool = Pool(HOST, port, concurrency)
        try:
            plan = targets(port, data)
            loop.run_until_complete(pool.run(plan["progress"], 1.0))
            loop.run_until_complete(pool.run(plan["progress"], seconds))
        finally:
            pool.close()
            loop.close()
    stream = StringIO()
    stats = pstats.Stats(str(output), stream=stream)
    stats.strip_dirs().sort_stats("tottime").print_stats(18)
    return _trim_pstats(stream.getvalue())


def pyspy_profile(
    py_spy: str,
    data: Seed,
    seconds: float,
    concurrency: int,
    *,
    app: str,
    target: str,
    cwd: Path = ROOT,
) -> str:
    """py-spy (sampling, 250 Hz, native off) on a uvicorn process while only ``target`` is
    loaded: the share of samples per function, by own time and by time spent below it."""
    port = _free_port()
    env = {"BENCH_RAW_JWT_KEY": _signing_key(), "PYTHONPATH": str(cwd)}
    label = f"{target}-before" if cwd != ROOT else target
    output = LOGS / f"pyspy-{label}.txt"
    argv = server_argv("uvicorn", port, app=app)
    with running(argv, f"pyspy-{label}", port, env, cwd=cwd) as process:
        loop = new_event_loop()
        pool = Pool(HOST, port, concurrency)
        try:
            plan = targets(port, data, raw_port=port)
            loop.run_until_complete(pool.run(plan[target], 1.0))
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(process.pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    str(output),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            outcome = loop.run_until_complete(pool.run(plan[target], seconds + 1.0))
            spy.wait(timeout=60)
        finally:
            pool.close()
            loop.close()
    return _collapsed_summary(output, f"{outcome.ok / outcome.seconds:,.0f} req/s under py-spy")


def _collapsed_summary(path: Path, title: str, top: int = 14) -> str:
    """Own and inclusive shares of the busiest frames of a py-spy collapsed-stack file."""
    own: dict[str, int] = {}
    below: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _sep, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            below[frame] = below.get(frame, 0) + count
    if not total:
        return f"{title}: no samples"
    lines = [f"{title}; {total:,} samples", "", "own %   incl %  function"]
    busiest = sorted(own, key=own.__getitem__, reverse=True)[:top]
    for frame in busiest:
        lines.append(
            f"{100 * own[frame] / total:5.1f}  {100 * below[frame] / total:6.1f}   {frame}"
        )
    return "\n".join(lines)


def _frame_name(frame: str) -> str:
    """``function (path/to/module.py:12)`` -> ``function (module.py)``."""
    name, _sep, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    parts = file.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{name} ({short})"


def _signing_key() -> str:
    from django.conf import settings

    return str(settings.SIMPLE_JWT["SIGNING_KEY"])


def unit_costs(data: Seed, calls: int = 2000) -> dict[str, float]:
    """What the pieces of one progress request cost here, in this process (µs per call)."""
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.test import AsyncClient, RequestFactory, override_settings
    from django.utils.deprecation import MiddlewareMixin
    from django.utils.module_loading import import_string

    from realtime import store
    from realtime.http import bearer_caller
    from realtime.keys import Topic

    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {data.token}")
    started = time.perf_counter()
    for _ in range(calls):
        bearer_caller(request.headers.get("Authorization", ""))
    costs = {"jwt": (time.perf_counter() - started) / calls * 1e6}
    from realtime.tokens import AccessTokenVerifier

    verifier = AccessTokenVerifier(_signing_key())
    started = time.perf_counter()
    for _ in range(calls):
        verifier.claims(data.token)  # never remembered: the full check
    costs["jwt_cold"] = (time.perf_counter() - started) / calls * 1e6
    hops, sync_only = 0, False
    for dotted in settings.MIDDLEWARE:
        middleware = import_string(dotted)
        if isinstance(middleware, type) and issubclass(middleware, MiddlewareMixin):
            # A hop per hook of an async-capable class; sync-only ones (project/middleware.py)
            # run on the one thread hop Django puts in front of them.
            hooks = hasattr(middleware, "process_request") + hasattr(middleware, "process_response")
            hops += hooks if middleware.async_capable else 0
            sync_only = sync_only or not middleware.async_capable
    costs["hops"] = hops + sync_only
    tenant_id = bearer_caller(request.headers.get("Authorization", "")).tenant_id  # type: ignore[union-attr]
    topic = Topic.job(uuid.UUID(data.job_ids[0]))

    async def per_call(make: Callable[[], Awaitable[object]]) -> float:
        for _ in range(50):
            await make()
        began = time.perf_counter()
        for _ in range(calls // 4):
            await make()
        return (time.perf_counter() - began) / (calls // 4) * 1e6

    async def measure_all() -> None:
        costs["redis"] = await per_call(lambda: store.aprogress(tenant_id, topic))
        costs["hop"] = await per_call(sync_to_async(lambda: None, thread_sensitive=True))
        costs["django_full"] = await per_call(lambda: AsyncClient().get("/bench/noop-noauth/"))
        lean = [m for m in settings.MIDDLEWARE if m.startswith("django_guid")]
        with override_settings(MIDDLEWARE=lean):
            costs["django_lean"] = await per_call(lambda: AsyncClient().get("/bench/noop-noauth/"))

    loop = new_event_loop()
    try:
        loop.run_until_complete(measure_all())
    finally:
        loop.close()
    return costs


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.lstrip().startswith("ncalls"):
            return "\n".join([lines[index - 2].strip() if index >= 2 else "", *lines[index:]])
    return text


def _free_port() -> int:
    from project import devservices

    return devservices.free_port()


# --- report ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One target's figures on one server, all windows pooled."""

    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int
    errors: int
    client_cpu_pct: float
    server_cpu_pct: float
    server_us_per_request: float
    redis_us_per_request: float
    statements: int


def summarise(server: Server) -> dict[str, Row]:
    rows = {}
    for name, windows in server.windows.items():
        seconds = sum(w.seconds for w in windows)
        ok = sum(w.ok for w in windows)
        latencies = [x for w in windows for x in w.latencies]
        cuts = statistics.quantiles(latencies, n=100, method="inclusive") if latencies else [0] * 99
        rows[name] = Row(
            name=name,
            rps=ok / seconds if seconds else 0.0,
            p50_ms=statistics.median(latencies) * 1000 if latencies else 0.0,
            p99_ms=cuts[98] * 1000,
            ok=ok,
            errors=sum(w.errors for w in windows),
            client_cpu_pct=100 * server.client_cpu[name] / seconds,
            server_cpu_pct=100 * server.server_cpu[name] / seconds,
            server_us_per_request=1e6 * server.server_cpu[name] / ok if ok else 0.0,
            redis_us_per_request=1e6 * server.redis_cpu[name] / ok if ok else 0.0,
            statements=server.statements[name],
        )
    return rows


def paired_ratios(server: Server, name: str, baseline: str) -> list[float]:
    """requests/s of ``name`` over ``baseline`` in each round (the same round's windows)."""
    return [
        (a.ok / a.seconds) / (b.ok / b.seconds)
        for a, b in zip(server.windows[name], server.windows[baseline], strict=True)
        if b.ok
    ]


def report(
    servers: list[Server],
    args: argparse.Namespace,
    profile: str | None,
    costs: dict[str, float],
) -> str:
    """The measured block of RESULTS.md."""
    machine = (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    lines = [
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({machine}); "
        f"{args.concurrency} keep-alive connections, {args.rounds} rounds of "
        f"{args.seconds:g} s per endpoint after a {args.warmup:g} s warm-up each, "
        f"{args.jobs} jobs. Load average at the end: {os.getloadavg()[0]:.2f}.",
        "",
        "| server | endpoint | req/s | vs noop | p50 ms | p99 ms | errors | "
        "server CPU | server µs/req | redis-server µs/req | client CPU | SQL statements |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for server in servers:
        rows = summarise(server)
        base = rows["noop"].rps
        for name in server.order:
            row = rows[name]
            lines.append(
                f"| {server.name} | {name} | {row.rps:,.0f} | {row.rps / base:.2f}x | "
                f"{row.p50_ms:.1f} | {row.p99_ms:.1f} | {row.errors} / {row.ok + row.errors:,} | "
                f"{row.server_cpu_pct:.0f}% | {row.server_us_per_request:.0f} | "
                f"{row.redis_us_per_request:.1f} | "
                f"{row.client_cpu_pct:.0f}% | {row.statements:,} |"
            )
        pairs = [(name, "noop") for name in ("progress", "progress-django", "detail")]
        if RAW in rows:
            pairs += [(name, RAW) for name in ("progress", BEFORE, "noop") if name in rows]
        if BEFORE in rows:
            pairs.append(("progress", BEFORE))
        for name, baseline in pairs:
            per_round = paired_ratios(server, name, baseline)
            verdicts.append(
                f"| {server.name} | {name} / {baseline} | "
                f"{rows[name].rps / rows[baseline].rps:.2f}x | "
                f"{statistics.median(per_round):.2f}x | "
                f"{min(per_round):.2f}-{max(per_round):.2f}x |"
            )
    lines += [
        "",
        "Ratios of requests/s (pooled over all rounds; and per round, each window against the "
        "baseline's window of the same round). `raw` is the raw ASGI app without Django "
        "(bench/http/raw.py) in its own uvicorn process; `progress-before` the progress "
        "endpoint of the commit given with `--before`, in its own process too:",
        "",
        "| server | ratio | pooled | median per round | range per round |",
        "| --- | --- | ---: | ---: | ---: |",
        *verdicts,
        "",
        "Zero SQL on the progress endpoint:",
        "",
        "| server | statements counted in the server during progress windows | "
        "server backends on the bench DB after a progress-only window | "
        "... after the detail warm-up |",
        "| --- | ---: | ---: | ---: |",
    ]
    for server in servers:
        lines.append(
            f"| {server.name} | {server.statements['progress']} | "
            f"{server.backends_after_progress} | {server.backends_after_detail} |"
        )
    lines += [
        "",
        "What the pieces cost, measured in the benchmark process (µs per call, sequential):",
        "",
        "| piece | µs |",
        "| --- | ---: |",
        "| token check (`bearer_caller`: a token verified before, remembered until its exp) | "
        f"{costs['jwt']:.0f} |",
        "| token check, first time (`realtime.tokens`: PyJWT HS256 verify, simplejwt's checks) | "
        f"{costs['jwt_cold']:.0f} |",
        "| Redis read (`store.aprogress`: one HMGET on the multiplexed connection, one round "
        f"trip, sequential) | {costs['redis']:.0f} |",
        f"| one `sync_to_async` thread hop | {costs['hop']:.0f} |",
        f"| thread hops per request from the project's middleware | {costs['hops']:.0f} |",
        "| Django in-process, no-op view, project middleware (test client) | "
        f"{costs['django_full']:.0f} |",
        f"| same, request-id middleware only | {costs['django_lean']:.0f} |",
    ]
    if profile:
        lines += [
            "",
            f"uvicorn under cProfile, progress endpoint only, {args.profile_seconds:g} s "
            "(cProfile slows everything; read the shares, not the absolute times):",
            "",
            "```",
            profile.rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def write_results(block: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else f"{BEGIN}\n{END}\n"
    head, _sep, rest = text.partition(BEGIN)
    _old, _sep, tail = rest.partition(END)
    RESULTS.write_text(f"{head}{BEGIN}\n{block}{END}{tail}")


def _companion(
    stack: ExitStack, name: str, *, app: str = "project.asgi:application", cwd: Path = ROOT
) -> tuple[int, int]:
    """Start a uvicorn process beside the measured server: (pid, port)."""
    port = _free_port()
    env = {"BENCH_RAW_JWT_KEY": _signing_key()}
    if cwd != ROOT:
        env["PYTHONPATH"] = str(cwd)  # that checkout's modules, not this one's
    print(f"  {name} ({app} in {cwd}) on port {port} ...", flush=True)
    process = stack.enter_context(
        running(server_argv("uvicorn", port, app=app), name, port, env, cwd=cwd)
    )
    return process.pid, port


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; RESULTS.md untouched")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0, help="per endpoint per round")
    parser.add_argument("--warmup", type=float, default=2.0, help="per endpoint")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--profile-seconds", type=float, default=8.0, help="0: no profile")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of the commit before a change: its progress endpoint is loaded "
        "beside the uvicorn server's, in the same rounds",
    )
    parser.add_argument(
        "--py-spy",
        help="path of a py-spy binary: sample the progress endpoint and the raw app, then exit",
    )
    parser.add_argument(
        "--no-raw", action="store_true", help="without the raw ASGI ceiling (bench/http/raw.py)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.warmup, args.profile_seconds = 1, 1.0, 0.5, 0.0
    _environment()
    import django

    django.setup()
    print(f"logs in {LOGS}", flush=True)
    data = seed(args.jobs)
    if args.py_spy:
        runs = [("project.asgi:application", "progress", ROOT), ("bench.http.raw:app", RAW, ROOT)]
        if args.before is not None:
            runs.insert(0, ("project.asgi:application", "progress", args.before.resolve()))
        for app, target, cwd in runs:
            print(f"py-spy on {target} in {cwd}:", flush=True)
            summary = pyspy_profile(
                args.py_spy, data, 8.0, args.concurrency, app=app, target=target, cwd=cwd
            )
            print(summary, flush=True)
        return 0
    servers = []
    for name in args.servers.split(","):
        kind, extra_env = SERVERS[name]
        port = _free_port()
        server = Server(name, server_argv(kind, port))
        print(f"{name} on port {port} ...", flush=True)
        with ExitStack() as stack:
            process = stack.enter_context(running(server.argv, name, port, extra_env))
            companions = {}
            if name == "uvicorn" and not args.no_raw:
                companions[RAW] = _companion(stack, RAW, app="bench.http.raw:app")
            if name == "uvicorn" and args.before is not None:
                companions[BEFORE] = _companion(stack, BEFORE, cwd=args.before.resolve())
            loop = new_event_loop()
            try:
                loop.run_until_complete(
                    measure(
                        server,
                        process.pid,
                        port,
                        data,
                        rounds=args.rounds,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        concurrency=args.concurrency,
                        companions=companions,
                    )
                )
            finally:
                loop.close()
        servers.append(server)
    profile = None
    if args.profile_seconds > 0:
        print("uvicorn under cProfile, progress only ...", flush=True)
        profile = profile_progress(data, args.profile_seconds, args.concurrency)
    costs = unit_costs(data)
    block = report(servers, args, profile, costs)
    print(block)
    for server in servers:
        for name, windows in server.windows.items():
            samples = [s for w in windows for s in w.error_samples]
            if samples:
                print(f"{server.name} {name} errors, e.g.: {samples[:3]}")
    if not args.quick:
        write_results(block)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    asyncio.set_event_loop(None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
