"""Worker benchmarks, one command:

    python bench/workers/run.py [--jobs 600] [--latency-jobs 100] [--rounds 2]
                                [--baseline-ref REF] [--profile]
                                [--server uvicorn|daphne] [--moto process|thread]

1. Throughput: no-op jobs through one worker process at its cap (5 slots), against the same
   process with 1 slot as the baseline measured in the same run. The queue is filled first;
   the rate is jobs / (last finished_at - first started_at), read from the job rows.
2. End-to-end latency: POST /api/v1/jobs/ (``messaging.send``, one recipient, locmem email)
   to the DONE frame at a WebSocket client, through the ASGI server and a ``manage.py
   run_worker`` process, one job at a time; p50/p90/p99, and where the time went (POST
   answered, first frame showing PROCESSING, DONE frame).

``--baseline-ref REF`` checks REF out into a temporary git worktree (sharing this checkout's
``.venv``; its processes run with that tree as their working directory and ``PYTHONPATH``) and
measures both trees in the same run: the latency in alternating rounds (this tree, the
baseline, this tree, the baseline, ...), the throughput once each. Both use this checkout's
services (the benchmark database, Redis, the moto server) and its migrations, so REF must have
the same migrations. ``--profile`` adds one unmeasured latency round per
tree with py-spy attached to the worker and to the ASGI server (wall clock, idle included) and
summarises where the job thread and the POST view spend their time; py-spy comes from
``--py-spy`` (default ``$PY_SPY`` or ``/tmp/pyspy/bin/py-spy``: ``pip install --target
/tmp/pyspy py-spy``).

Uses its own database (``academy_bench_workers``), Redis database 13 with a key prefix, and
its own moto server, so it never touches ``make demo`` or test runs. Writes
``bench/workers/RESULTS.md``.

``--server`` picks the ASGI server of both trees: ``uvicorn`` (default) with production's
options (``project.devrun.asgi_server_command``: uvloop, httptools, no access log), or
``daphne``. ``--moto`` puts moto's server in a process of its own (``process``, default: its
CPU no longer competes with the benchmark's client threads under one GIL) or in a thread of
the benchmark process (``thread``, as before).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from project import devservices  # noqa: E402
from realtime.identity import Caller  # noqa: E402 - pure logic, no Django

RESULTS = Path(__file__).with_name("RESULTS.md")
LOGS = Path(tempfile.mkdtemp(prefix="bench-workers-"))
SUBSCRIPTIONS_PER_SOCKET = 90  # PROTOCOL.md §4: at most 100 per connection
PACKAGES = ("bench", "domains", "project", "realtime", "workers")  # the trees' own code
DEFAULT_PY_SPY = os.environ.get("PY_SPY", "/tmp/pyspy/bin/py-spy")  # noqa: S108 - pip --target


@dataclass(frozen=True)
class Tree:
    """A checkout whose server and worker are measured: this one, or the baseline's."""

    label: str
    root: Path
    slug: str  # names its logs and profiles


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@contextmanager
def baseline_tree(ref: str) -> Iterator[Tree]:
    """``ref`` checked out into a temporary worktree that uses this checkout's ``.venv``."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    changed = _git("diff", "--name-only", commit, "HEAD", "--", "*/migrations/*")
    if changed:
        raise SystemExit(f"{ref} has other migrations than HEAD ({changed}); not comparable")
    where = Path(tempfile.mkdtemp(prefix="bench-workers-baseline-")) / "tree"
    _git("worktree", "add", "--detach", str(where), commit)
    try:
        (where / ".venv").symlink_to(ROOT / ".venv")
        yield Tree(label=f"baseline {commit[:8]}", root=where, slug=commit[:8])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT, check=False)
        shutil.rmtree(where.parent, ignore_errors=True)


MOTO: subprocess.Popen[bytes] | None = None  # moto's server when it runs in its own process


def _moto_process() -> str:
    """moto's server in a process of its own; its endpoint URL."""
    global MOTO
    port = devservices.free_port()
    log = (LOGS / "moto.log").open("wb")
    MOTO = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 30
    while not devservices.port_open("127.0.0.1", port):
        if time.monotonic() > deadline or MOTO.poll() is not None:
            raise RuntimeError(f"moto's server did not start; see {LOGS}")
        time.sleep(0.1)
    return f"http://127.0.0.1:{port}"


def _moto_cpu() -> float:
    """CPU seconds moto's server used so far (its process, or this one when in a thread)."""
    return _cpu_seconds(MOTO.pid) if MOTO is not None else time.process_time()


def _environment(moto: str) -> dict[str, str]:
    os.environ.setdefault(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/academy_bench_workers"
    )
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.setdefault("REALTIME_KEY_PREFIX", "benchw:")
    os.environ.setdefault("DJANGO_ENV", "dev")
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ["LOG_LEVEL"] = "WARNING"
    if moto == "process":
        os.environ["AWS_ENDPOINT_URL"] = _moto_process()
    services = devservices.ensure_services(with_moto=True)
    os.environ.update(services.env)
    os.environ["PYTHONPATH"] = str(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    return dict(os.environ)


def _spawn(args: list[str], name: str, tree: Tree, **env: str) -> subprocess.Popen[bytes]:
    log = (LOGS / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=tree.root,
        env={**os.environ, "PYTHONPATH": str(tree.root), **env},
        stdout=log,
        stderr=log,
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
        # What a new PostgreSQL backend costs: a connect, one statement, a close.
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


# --- throughput -------------------------------------------------------------------------------
def throughput(caller: Caller, jobs: int, concurrency: int, tree: Tree) -> dict[str, float]:
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
        f"noop-{concurrency}-{tree.slug}",
        tree,
    )
    moto_cpu_before = _moto_cpu()
    try:
        while Job.objects.filter(status="DONE").count() < jobs:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited; see {LOGS}")
            time.sleep(0.2)
        wall = time.monotonic() - started
        worker_cpu = _cpu_seconds(worker.pid)
        moto_cpu = _moto_cpu() - moto_cpu_before
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


# --- latency ----------------------------------------------------------------------------------
@dataclass
class Samples:
    """One tree's latency samples, pooled over its rounds (ms)."""

    done: list[float] = field(default_factory=list)  # POST sent -> DONE frame
    post: list[float] = field(default_factory=list)  # POST sent -> 202 read
    processing: list[float] = field(default_factory=list)  # POST sent -> PROCESSING seen
    rounds: list[tuple[float, float]] = field(default_factory=list)  # (p50, p99) per round

    def extend(self, other: Samples) -> None:
        self.done += other.done
        self.post += other.post
        self.processing += other.processing
        self.rounds.append((statistics.median(other.done), _quantile(other.done, 99)))


def _quantile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _messaging_budget_reset(token: str) -> None:
    """Give the benchmark user its day's recipient budget back (domains/jobs/quotas.py): a few
    runs in one day would otherwise use it up and be refused (429)."""
    from realtime import store
    from realtime.auth import caller_from_access_token
    from realtime.clients import sync_redis

    caller = caller_from_access_token(token)
    space = store.keyspace()
    day = datetime.now(UTC).strftime("%Y%m%d")
    sync_redis().delete(
        space.messaging_daily_key(caller.tenant_id, day, user_id=caller.user_id),
        space.messaging_daily_key(caller.tenant_id, day),
    )


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while not devservices.port_open("127.0.0.1", port):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{what} did not start; see {LOGS}")
        time.sleep(0.2)


def _py_spy(pid: int, out: Path, py_spy: str) -> subprocess.Popen[bytes]:
    log = (LOGS / f"{out.stem}.py-spy.log").open("wb")
    command = [py_spy, "record", "--pid", str(pid), "--rate", "500", "--format", "raw"]
    command += ["--idle", "--threads", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=log, stderr=log)


def server_argv(server: str, port: int) -> list[str]:
    """The ASGI server's arguments after the interpreter, the same for both trees."""
    if server == "daphne":
        return ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"]
    from project.devrun import asgi_server_command

    return asgi_server_command("127.0.0.1", port, server="uvicorn")[1:]


def latency(
    token: str,
    jobs: int,
    tree: Tree,
    *,
    round_name: str,
    server_name: str = "uvicorn",
    warmup: int = 10,
    profile: tuple[Path, str] | None = None,
) -> Samples:
    """``jobs`` jobs one at a time through a fresh ASGI server and worker of ``tree``."""
    from websockets.sync.client import connect
    from websockets.typing import Subprotocol

    _messaging_budget_reset(token)
    port = devservices.free_port()
    server = _spawn(server_argv(server_name, port), f"server-{round_name}", tree)
    worker = _spawn(
        ["manage.py", "run_worker", "--queue", "messaging"], f"worker-{round_name}", tree
    )
    profilers: list[subprocess.Popen[bytes]] = []
    samples = Samples()
    try:
        _wait_for_port(port, server, server_name)
        time.sleep(2)  # the worker's first long poll is open
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited; see {LOGS}")
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
                    if index == warmup and profile is not None:
                        directory, py_spy = profile
                        profilers = [
                            _py_spy(worker.pid, directory / f"{round_name}-worker.txt", py_spy),
                            _py_spy(server.pid, directory / f"{round_name}-server.txt", py_spy),
                        ]
                        time.sleep(1)  # attached
                    t0 = time.perf_counter()
                    http_conn.request("POST", "/api/v1/jobs/", body=body, headers=headers)
                    response = http_conn.getresponse()
                    created = json.loads(response.read())
                    t_post = time.perf_counter()
                    if response.status != 202:
                        raise RuntimeError(f"POST answered {response.status}: {created}")
                    socket.send(json.dumps({"type": "subscribe", "topic": created["topic"]}))
                    t_processing = None
                    while True:
                        frame = json.loads(socket.recv(timeout=30))
                        if frame.get("type") == "error":
                            raise RuntimeError(f"WebSocket error frame: {frame}")
                        if frame.get("topic") != created["topic"]:
                            continue
                        status = frame.get("status")
                        if t_processing is None and status in ("PROCESSING", "DONE"):
                            t_processing = time.perf_counter()
                        if status == "DONE":
                            break
                    t_done = time.perf_counter()
                    if index >= warmup:
                        samples.done.append((t_done - t0) * 1000)
                        samples.post.append((t_post - t0) * 1000)
                        samples.processing.append((t_processing - t0) * 1000)
    finally:
        for profiler in profilers:
            profiler.send_signal(2)  # SIGINT: py-spy writes its output and exits
            try:
                profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                profiler.kill()
        _stop(worker)
        _stop(server)
    return samples


# --- profiles ---------------------------------------------------------------------------------
def _frame_name(frame: str) -> str:
    """``function (path:line)`` from py-spy's raw format, as ``function path`` in the tree."""
    name, _, location = frame.partition(" (")
    location = location.rstrip(")").rsplit(":", 1)[0]
    if "site-packages/" in location:
        return f"{name} {location.split('site-packages/', 1)[1]}"
    location = "/" + location.lstrip("/")
    starts = [location.rfind(f"/{top}/") for top in PACKAGES]
    start = max(starts)
    location = location[start + 1 :] if start >= 0 else location.rsplit("/", 1)[-1]
    return f"{name} {location}".strip()


def summarise_profile(path: Path, marker: str, top: int = 18) -> str:
    """Inclusive and self shares of the samples whose stack passes through ``marker`` (a
    frame name such as ``Worker.execute workers/runner.py``): wall clock, since py-spy ran with
    ``--idle``, so waiting on PostgreSQL, Redis or SQS shows as the call that waits."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return f"(no profile at {path})"
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # the first is the thread
        if marker not in frames:
            continue
        frames = frames[frames.index(marker) :]
        count = int(count_text)
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return f"(no samples through `{marker}`)"
    rows = [f"{total} samples through `{marker}`.", ""]
    rows += ["| inclusive % | function |", "| ---: | --- |"]
    rows += [f"| {c / total:.1%} | `{f}` |" for f, c in inclusive.most_common(top)]
    rows += ["", "| self % | function |", "| ---: | --- |"]
    rows += [f"| {c / total:.1%} | `{f}` |" for f, c in own.most_common(top // 2)]
    return "\n".join(rows)


# --- the report -------------------------------------------------------------------------------
def _stats(samples: Samples) -> dict[str, float]:
    return {
        "jobs": len(samples.done),
        "p50": statistics.median(samples.done),
        "p90": _quantile(samples.done, 90),
        "p99": _quantile(samples.done, 99),
        "max": max(samples.done),
        "post_p50": statistics.median(samples.post),
        "processing_p50": statistics.median(samples.processing),
        "after_processing_p50": statistics.median(
            [d - p for d, p in zip(samples.done, samples.processing, strict=True)]
        ),
    }


def _latency_table(trees: list[Tree], stats: dict[str, dict[str, float]]) -> list[str]:
    head = "| measurement | " + " | ".join(t.label for t in trees)
    rows = [head + (" | ratio |" if len(trees) == 2 else " |")]
    rows.append("| --- |" + " ---: |" * (len(trees) + (1 if len(trees) == 2 else 0)))

    def row(name: str, key: str) -> str:
        values = [stats[t.label][key] for t in trees]
        cells = " | ".join(f"{v:.1f}" for v in values)
        ratio = f" | {values[0] / values[1]:.2f}x" if len(values) == 2 else ""
        return f"| {name} | {cells}{ratio} |"

    rows += [
        row("POST → DONE frame, p50 (ms)", "p50"),
        row("p90", "p90"),
        row("**p99**", "p99"),
        row("max", "max"),
        row("of which POST answered (202), p50", "post_p50"),
        row("POST → first frame showing PROCESSING, p50", "processing_p50"),
        row("that frame → DONE frame, p50", "after_processing_p50"),
    ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=600)
    parser.add_argument("--baseline-jobs", type=int, default=200)
    parser.add_argument("--latency-jobs", type=int, default=100, help="per tree and round")
    parser.add_argument("--rounds", type=int, default=2, help="latency rounds per tree")
    parser.add_argument("--baseline-ref", default=None, help="a commit to compare against")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--profile", action="store_true", help="py-spy one extra round each")
    parser.add_argument("--py-spy", default=DEFAULT_PY_SPY)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument("--moto", choices=("process", "thread"), default="process")
    args = parser.parse_args()
    try:
        return _main(args)
    finally:
        if MOTO is not None:
            _stop(MOTO)


def _main(args: argparse.Namespace) -> int:
    _environment(args.moto)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from domains.tenants import repository
    from domains.tenants.services import auth_token_issue
    from realtime.auth import caller_from_access_token
    from realtime.identity import Role

    # The throughput runs queue hundreds of jobs of one user at once: far over the job quota
    # (domains/jobs/quotas.py), which only this process checks and which is not measured here.
    settings.JOB_ACTIVE_MAX_PER_USER = settings.JOB_ACTIVE_MAX_PER_TENANT = 1_000_000
    call_command("migrate", "--noinput", verbosity=0)
    call_command("create_queues", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    tenant = repository.tenant_upsert(code="bench", name="Bench Academy")
    password = "bench1234"  # noqa: S105 - a throwaway user in the benchmark's own database
    repository.member_upsert(tenant.id, username="bench-staff", password=password, role=Role.STAFF)
    token = auth_token_issue(tenant_code="bench", username="bench-staff", password=password).access
    caller = caller_from_access_token(token)
    if args.profile and not Path(args.py_spy).exists():
        raise SystemExit(f"--profile needs py-spy at {args.py_spy} (see --help)")

    dirty = " + changes" if _git("status", "--porcelain", "--untracked-files=no") else ""
    this = Tree(label=f"this {_git('rev-parse', 'HEAD')[:8]}{dirty}", root=ROOT, slug="this")
    print(f"logs in {LOGS}")
    with contextlib_nullable(args.baseline_ref) as base:
        trees = [this] if base is None else [this, base]
        costs = unit_costs()
        through: dict[str, dict[str, dict[str, float]]] = {}
        if not args.no_throughput:
            for tree in trees:
                print(f"throughput, {tree.label}, 1 slot then 5 ...", flush=True)
                one = throughput(caller, args.baseline_jobs, 1, tree)
                five = throughput(caller, args.jobs, 5, tree)
                through[tree.label] = {"one": one, "five": five}
                print(f"  {one['rate']:.1f} / {five['rate']:.1f} jobs/s")
        pooled = {tree.label: Samples() for tree in trees}
        for number in range(args.rounds):
            for tree in trees:
                name = f"r{number + 1}-{tree.slug}"
                print(f"latency round {number + 1}, {tree.label} ...", flush=True)
                got = latency(
                    token, args.latency_jobs, tree, round_name=name, server_name=args.server
                )
                pooled[tree.label].extend(got)
                p50, p99 = pooled[tree.label].rounds[-1]
                print(f"  p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        profiles: dict[str, tuple[str, str]] = {}
        if args.profile:
            directory = Path(tempfile.mkdtemp(prefix="bench-workers-profile-"))
            for tree in trees:
                name = f"profile-{tree.slug}"
                print(f"profile round, {tree.label} ...", flush=True)
                latency(
                    token,
                    args.latency_jobs,
                    tree,
                    round_name=name,
                    server_name=args.server,
                    profile=(directory, args.py_spy),
                )
                profiles[tree.label] = (
                    summarise_profile(
                        directory / f"{name}-worker.txt", "Worker.execute workers/runner.py"
                    ),
                    summarise_profile(
                        directory / f"{name}-server.txt", "JobCreateApi.post domains/jobs/apis.py"
                    ),
                )
            print(f"raw profiles in {directory}")
        load = os.getloadavg()
    _reset_jobs()
    stats = {label: _stats(samples) for label, samples in pooled.items()}
    write_results(args, trees, stats, pooled, through, costs, profiles, load)
    print("\n".join(_latency_table(trees, stats)))
    print(f"wrote {args.output}")
    return 0


@contextmanager
def contextlib_nullable(ref: str | None) -> Iterator[Tree | None]:
    if ref is None:
        yield None
        return
    with baseline_tree(ref) as tree:
        yield tree


def write_results(
    args: argparse.Namespace,
    trees: list[Tree],
    stats: dict[str, dict[str, float]],
    pooled: dict[str, Samples],
    through: dict[str, dict[str, dict[str, float]]],
    costs: dict[str, float],
    profiles: dict[str, tuple[str, str]],
    load: tuple[float, float, float],
) -> None:
    machine = (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    command = "python bench/workers/run.py " + " ".join(sys.argv[1:])
    lines = [
        "# Worker benchmarks",
        "",
        f"`{command.strip()}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({machine}).",
        "PostgreSQL and Redis local, SQS = moto's server ("
        + ("in a process of its own" if args.moto == "process" else "in the benchmark process")
        + f"), the ASGI server {args.server}"
        + (" with production's options" if args.server == "uvicorn" else "")
        + " (both trees), one worker process; every job does a claim and a finish transaction,",
        "two Redis publishes (PROCESSING, DONE), an SQS receive and delete.",
        f"Load average (1, 5, 15 min) at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} "
        "(other sessions share the machine: compare ratios, not absolutes).",
        "",
        "## POST /api/v1/jobs/ → DONE frame",
        "",
        f"`messaging.send`, one recipient, one job at a time; {args.rounds} round(s) of "
        f"{args.latency_jobs} jobs per tree, alternating"
        + (" (this tree, the baseline, ...)" if len(trees) == 2 else "")
        + f", each round with a fresh {args.server} and `run_worker` process and 10 unmeasured"
        " jobs.",
        "",
        *_latency_table(trees, stats),
        "",
        "Per round, p50 / p99 (ms): "
        + "; ".join(
            f"{t.label}: " + ", ".join(f"{a:.0f} / {b:.0f}" for a, b in pooled[t.label].rounds)
            for t in trees
        )
        + ".",
        "",
    ]
    if through:
        lines += ["## No-op jobs/s, one worker process", "", "| measurement | "]
        lines[-1] += " | ".join(t.label for t in trees) + " |"
        lines.append("| --- |" + " ---: |" * len(trees))
        cells = [through[t.label] for t in trees]
        lines += [
            f"| 5 slots (cap), {args.jobs} jobs, jobs/s | "
            + " | ".join(f"**{c['five']['rate']:.1f}**" for c in cells)
            + " |",
            f"| 1 slot, {args.baseline_jobs} jobs, jobs/s | "
            + " | ".join(f"{c['one']['rate']:.1f}" for c in cells)
            + " |",
            "| CPU per job at 5 slots, worker / moto ms | "
            + " | ".join(
                f"{c['five']['worker_cpu_ms']:.1f} / {c['five']['moto_cpu_ms']:.1f}" for c in cells
            )
            + " |",
            "| same at 1 slot | "
            + " | ".join(
                f"{c['one']['worker_cpu_ms']:.1f} / {c['one']['moto_cpu_ms']:.1f}" for c in cells
            )
            + " |",
            "",
        ]
    lines += [
        "## What one step costs here (same run, median of 100 calls)",
        "",
        "| step | ms |",
        "| --- | ---: |",
        f"| PostgreSQL: connect, `SELECT 1`, close | {costs['db_fresh']:.2f} |",
        f"| PostgreSQL: `SELECT 1` on an open connection | {costs['db_open']:.2f} |",
        f"| SQS (moto) SendMessage | {costs['sqs_send']:.2f} |",
        f"| SQS (moto) ReceiveMessage, empty, no wait | {costs['sqs_receive']:.2f} |",
        f"| Redis publish (state script, one round trip) | {costs['redis_publish']:.2f} |",
        "",
    ]
    for tree in trees:
        if tree.label not in profiles:
            continue
        worker_profile, server_profile = profiles[tree.label]
        lines += [
            f"## Profile, {tree.label}",
            "",
            "py-spy, wall clock (`--idle`), one extra round of "
            f"{args.latency_jobs} jobs. The worker's job thread:",
            "",
            worker_profile,
            "",
            f"{args.server}, the `POST /api/v1/jobs/` view:",
            "",
            server_profile,
            "",
        ]
    marker = "<!-- notes -->"
    notes = ""
    if args.output.exists() and marker in args.output.read_text():
        notes = args.output.read_text().split(marker, 1)[1]
    args.output.write_text("\n".join(lines) + "\n" + marker + notes)


if __name__ == "__main__":
    sys.exit(main())
