"""WebSocket fan-out benchmark, one command:

    python -m bench.ws.run [--clients 1000 5000] [--servers design-daphne ...] [--quick]

For each N and each server variant (a separate server process on its own port, all measured
in the same run): N WebSocket clients, each watching its own topic, in two client processes
(``bench/ws/client.py``, raw asyncio + uvloop); one publisher process
(``bench/ws/publisher.py``) publishing at fixed rates round robin over the N topics.

Measured per variant and N:

* marginal RSS per idle connection: server VmRSS with N subscribed idle connections minus
  VmRSS with a few warm-up connections, divided by N (after letting it settle);
* publish→receive latency p50/p99 at a fixed 1,000 frames/s (the publish time travels in the
  payload: ``progress.step = "ts:<µs>"`` for the design);
* saturation: the publish rate is raised in steps until delivery falls behind (fewer than
  95 % of the frames published in the window delivered within 1 s of its end) or p99 exceeds
  500 ms; the highest sustained step is reported, and the peak delivered rate seen;
* CPU of the server, the client processes and the publisher per step (from /proc), so the
  reader can judge whether the load generator was the limit.

Uses Redis db 9 with the key prefix ``benchws:`` (flushed at start) and no database. Writes
``bench/ws/last_run.json`` and ``bench/ws/last_run.md`` (tables; RESULTS.md quotes them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXTRA = os.environ.get("BENCH_WS_EXTRA", "/tmp/wsb-extra")  # noqa: S108  # wsproto, py-spy (pip --target)
LOGS = Path(tempfile.mkdtemp(prefix="bench-ws-"))
PY = sys.executable
TENANT_ID = 1
USER_ID = 1
WARM_CONNECTIONS = 10
CLIENT_PROCESSES = 2
P99_LIMIT_MS = 500.0
DELIVERED_MIN = 0.95
RATES = [
    250,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    4000,
    5000,
    6500,
    8000,
    10000,
    13000,
    16000,
    20000,
    25000,
    30000,
]

_UVICORN = [
    "-m",
    "uvicorn",
    "project.asgi:application",
    "--host",
    "127.0.0.1",
    "--loop",
    "uvloop",
    "--ws-per-message-deflate",
    "false",
    "--no-access-log",
    "--log-level",
    "warning",
    "--lifespan",
    "off",
]
_DAPHNE = ["-m", "daphne", "-b", "127.0.0.1", "--proxy-headers"]
_STOCK_ENV = {"DJANGO_SETTINGS_MODULE": "bench.ws.stock_settings"}

# name -> (argv after python, with {port}), extra env, publisher mode, description
VARIANTS: dict[str, tuple[list[str], dict[str, str], str, str]] = {
    "design-daphne": (
        [*_DAPHNE, "-p", "{port}", "project.asgi:application"],
        {},
        "design",
        "project.asgi (RealtimeConsumer, RedisPubSubChannelLayer), daphne",
    ),
    "design-uvicorn": (
        [*_UVICORN, "--port", "{port}", "--ws", "websockets"],
        {},
        "design",
        "project.asgi, uvicorn --ws websockets --loop uvloop, deflate off",
    ),
    "design-uvicorn-sansio": (
        [*_UVICORN, "--port", "{port}", "--ws", "websockets-sansio"],
        {},
        "design",
        "project.asgi, uvicorn --ws websockets-sansio --loop uvloop, deflate off",
    ),
    "design-uvicorn-wsproto": (
        [*_UVICORN, "--port", "{port}", "--ws", "wsproto"],
        {},
        "design",
        "project.asgi, uvicorn --ws wsproto --loop uvloop",
    ),
    "design-uvicorn-custom": (
        [
            *_UVICORN[:2],
            os.environ.get("BENCH_WS_APP", "project.asgi:application"),
            *_UVICORN[3:],
            *["--port", "{port}", "--ws", "websockets"],
        ],
        {},
        "design",
        "as design-uvicorn, app from BENCH_WS_APP (to compare a patched app in the same run)",
    ),
    "design-uvicorn-sansio-custom": (
        [
            *_UVICORN[:2],
            os.environ.get("BENCH_WS_APP", "project.asgi:application"),
            *_UVICORN[3:],
            *["--port", "{port}", "--ws", "websockets-sansio"],
        ],
        {},
        "design",
        "as design-uvicorn-sansio, app from BENCH_WS_APP (a patched app, in the same run)",
    ),
    "design-uvicorn-sansio-base": (
        [*_UVICORN, "--port", "{port}", "--ws", "websockets-sansio"],
        {},
        "design",
        "as design-uvicorn-sansio, served from the checkout BENCH_WS_BASE (the commit before a "
        "change, in a second worktree) with this checkout's venv",
    ),
    "stock-core": (
        [*_DAPHNE, "-p", "{port}", "bench.ws.stock_asgi:application"],
        {**_STOCK_ENV, "BENCH_STOCK_LAYER": "core"},
        "stock",
        "AsyncJsonWebsocketConsumer + group_send, channels_redis RedisChannelLayer, daphne",
    ),
    "stock-pubsub": (
        [*_DAPHNE, "-p", "{port}", "bench.ws.stock_asgi:application"],
        {**_STOCK_ENV, "BENCH_STOCK_LAYER": "pubsub"},
        "stock",
        "AsyncJsonWebsocketConsumer + group_send, RedisPubSubChannelLayer, daphne",
    ),
    "stock-pubsub-uvicorn": (
        [
            *_UVICORN[:2],
            "bench.ws.stock_asgi:application",
            *_UVICORN[3:],
            "--port",
            "{port}",
            "--ws",
            "websockets",
        ],
        {**_STOCK_ENV, "BENCH_STOCK_LAYER": "pubsub"},
        "stock",
        "stock pubsub consumer under uvicorn --ws websockets --loop uvloop",
    ),
    "floor-uvicorn-sansio": (
        [
            *_UVICORN[:2],
            "bench.ws.floor_asgi:application",
            *_UVICORN[3:],
            *["--port", "{port}", "--ws", "websockets-sansio"],
        ],
        {},
        "ceiling",
        "memory floor: uvicorn websockets-sansio with an app that only holds the socket "
        "(delivers nothing)",
    ),
    "ceiling": (
        ["-m", "bench.ws.ceiling", "--port", "{port}"],
        {},
        "ceiling",
        "bare asyncio websockets server, one PSUBSCRIBE, broadcast as is",
    ),
    "ceiling-script": (
        ["-m", "bench.ws.ceiling", "--port", "{port}", "--source", "script"],
        {},
        "design",
        "the bare ceiling server fed by the production state script (same Redis-side work as "
        "the design): one PSUBSCRIBE of the layer's group channels, the frame out of the msgpack",
    ),
}
DEFAULT_SERVERS = [
    "design-daphne",
    "design-uvicorn",
    "design-uvicorn-sansio",
    "stock-core",
    "stock-pubsub",
    "ceiling",
    "floor-uvicorn-sansio",
]


@dataclass
class Step:
    """One publish rate held for the measurement window."""

    target: int
    published_rate: float
    delivered_rate: float
    delivered_share: float
    p50_ms: float | None
    p99_ms: float | None
    server_cpu: float  # cores (1.0 = one core busy)
    client_cpu: float
    publisher_cpu: float
    late_ticks: int
    sustained: bool
    server_us_per_frame: float  # server CPU per delivered frame: robust to a busy machine
    load_average: float
    redis_cpu: float = 0.0  # cores of redis-server through the step (the state script runs there)


@dataclass
class Result:
    """Everything measured for one variant at one N."""

    variant: str
    clients: int
    connect_seconds: float = 0.0
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    rss_per_conn_kb: float = 0.0
    idle_server_cpu: float = 0.0
    latency_1000: Step | None = None
    steps: list[Step] = field(default_factory=list)
    saturation: int = 0
    peak_delivered: float = 0.0
    us_per_frame: float = 0.0  # server CPU per delivered frame, median of the sustained steps
    note: str = ""


# --- processes ------------------------------------------------------------------------------
def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _root_of(variant: str) -> Path:
    """The checkout a variant's server runs from: this one, or BENCH_WS_BASE for ``-base``."""
    if variant.endswith("-base"):
        base = os.environ.get("BENCH_WS_BASE")
        if not base:
            raise RuntimeError(f"{variant} needs BENCH_WS_BASE (a checkout of the base commit)")
        return Path(base).resolve()
    return ROOT


def _spawn(
    args: list[str],
    name: str,
    env: dict[str, str] | None = None,
    pipe: bool = False,
    root: Path = ROOT,
) -> subprocess.Popen[str]:
    log = (LOGS / f"{name}.log").open("w")
    if root != ROOT:  # python -m puts the working directory first on sys.path; PYTHONPATH too
        env = {**(env or {}), "PYTHONPATH": os.pathsep.join([str(root), EXTRA])}
    return subprocess.Popen(
        [PY, *args],
        cwd=root,
        env={**os.environ, **(env or {})},
        stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
        stdout=subprocess.PIPE if pipe else log,
        stderr=log,
        text=True,
        bufsize=1,
        preexec_fn=_raise_nofile,
    )


def _stop(process: subprocess.Popen[str] | None) -> None:
    from project import devservices

    devservices.stop_process(process)


def _ask(process: subprocess.Popen[str], payload: dict[str, Any]) -> dict[str, Any]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(payload) + "\n")
    process.stdin.flush()
    return _read(process)


def _read(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"process {process.args!r} exited; see {LOGS}")
    return dict(json.loads(line))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_redis_pid: list[int | None] = []


def redis_pid() -> int | None:
    """The pid of the benchmark's redis-server (from INFO), when it runs on this machine."""
    if not _redis_pid:
        from realtime.clients import sync_redis

        pid = int(sync_redis().info("server")["process_id"])
        _redis_pid.append(pid if Path(f"/proc/{pid}/stat").exists() else None)
    return _redis_pid[0]


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _wait_port(port: int, server: subprocess.Popen[str], timeout: float = 40) -> None:
    from project import devservices

    deadline = time.monotonic() + timeout
    while not devservices.port_open("127.0.0.1", port):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start; see {LOGS}")
        time.sleep(0.2)


# --- setup ----------------------------------------------------------------------------------
def environment() -> None:
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/academy_bench_ws")
    os.environ.setdefault("REALTIME_KEY_PREFIX", "benchws:")
    os.environ["DJANGO_ENV"] = "dev"
    os.environ["DEBUG"] = "false"
    os.environ["DB_POOL"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["ACCESS_TOKEN_LIFETIME_SECONDS"] = "86400"  # noqa: S105 - no token_expiring mid-run
    # Every simulated browser is the same user; the per-user cap (audit F19) must not apply.
    os.environ["REALTIME_MAX_CONNECTIONS_PER_USER"] = "1000000"
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), EXTRA])


def issue_token() -> str:
    """An access token of a staff member of tenant 1 (stateless: no user row is needed)."""
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken()
    token["user_id"] = USER_ID
    token["tenant_id"] = TENANT_ID
    token["role"] = "staff"
    return str(token)


def seed_design_topics(topics: list[str]) -> None:
    """Give every topic a live Redis state through the real publish path."""
    from realtime import store
    from realtime.keys import Topic
    from realtime.state import Change

    for raw in topics:
        topic = Topic.parse(raw)
        store.publish(
            TENANT_ID,
            topic,
            Change(status="PENDING", owner_id=USER_ID, job_type="excel_import", attempt=1),
        )
        store.publish(TENANT_ID, topic, Change(status="PROCESSING", attempt=1))


# --- measurement ----------------------------------------------------------------------------
def _percentile(sorted_values: list[int], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index] / 1000


def _frames(clients: list[subprocess.Popen[str]]) -> int:
    return sum(int(_ask(c, {"cmd": "report", "until": 0})["frames"]) for c in clients)


def _drain(clients: list[subprocess.Popen[str]], limit: float = 20.0) -> bool:
    """Wait until no frame arrives for a second (the server's backlog is delivered)."""
    deadline = time.monotonic() + limit
    for c in clients:
        _ask(c, {"cmd": "reset", "since": 2**62})
    last = -1
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _frames(clients)
        if now == last:
            return True
        last = now
    return False


def run_step(
    rate: int,
    server: subprocess.Popen[str],
    clients: list[subprocess.Popen[str]],
    publisher: subprocess.Popen[str],
    warmup: float,
    duration: float,
) -> Step:
    start = time.time_ns() // 1000 + 300_000
    window_start = start + int(warmup * 1e6)
    window_end = window_start + int(duration * 1e6)
    for c in clients:
        _ask(c, {"cmd": "reset", "since": window_start})
    pids = {"server": server.pid, "publisher": publisher.pid}
    if (redis := redis_pid()) is not None:
        pids["redis"] = redis
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    ccpu0 = sum(cpu_seconds(c.pid) for c in clients)
    t0 = time.monotonic()
    pub = _ask(
        publisher,
        {"rate": rate, "window_start": window_start, "window_end": window_end},
    )
    elapsed = time.monotonic() - t0
    cpu = {k: (cpu_seconds(p) - cpu0[k]) / elapsed for k, p in pids.items()}
    ccpu = (sum(cpu_seconds(c.pid) for c in clients) - ccpu0) / elapsed
    time.sleep(1.0)  # grace: frames published in the window may arrive up to 1 s after it
    latencies: list[int] = []
    for c in clients:
        latencies.extend(_ask(c, {"cmd": "report", "until": window_end})["latency_us"])
    latencies.sort()
    seconds = (window_end - window_start) / 1e6
    published = pub["window_sent"]
    delivered = len(latencies)
    share = delivered / published if published else 0.0
    p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
    sustained = (
        published >= DELIVERED_MIN * rate * seconds
        and share >= DELIVERED_MIN
        and p99 is not None
        and p99 <= P99_LIMIT_MS
    )
    return Step(
        target=rate,
        published_rate=published / seconds,
        delivered_rate=delivered / seconds,
        delivered_share=share,
        p50_ms=p50,
        p99_ms=p99,
        server_cpu=cpu["server"],
        client_cpu=ccpu,
        publisher_cpu=cpu["publisher"],
        late_ticks=int(pub["late_ticks"]),
        sustained=sustained,
        server_us_per_frame=cpu["server"] / (delivered / seconds) * 1e6 if delivered else 0.0,
        load_average=os.getloadavg()[0],
        redis_cpu=cpu.get("redis", 0.0),
    )


def _show(step: Step) -> str:
    p50 = f"{step.p50_ms:.1f}" if step.p50_ms is not None else "-"
    p99 = f"{step.p99_ms:.1f}" if step.p99_ms is not None else "-"
    return (
        f"  {step.target:>6}/s  published {step.published_rate:8.0f}  delivered "
        f"{step.delivered_rate:8.0f} ({step.delivered_share:5.1%})  p50 {p50:>7} p99 {p99:>7} ms"
        f"  cpu server {step.server_cpu:.2f} clients {step.client_cpu:.2f} "
        f"pub {step.publisher_cpu:.2f} redis {step.redis_cpu:.2f}  "
        f"{step.server_us_per_frame:.0f} µs/frame  "
        f"load {step.load_average:.1f}  {'ok' if step.sustained else 'FAIL'}"
    )


def measure(
    variant: str, n: int, topics: list[str], token: str, args: argparse.Namespace
) -> Result:
    from project import devservices

    argv, env, mode, _ = VARIANTS[variant]
    port = devservices.free_port()
    result = Result(variant=variant, clients=n)
    server = _spawn(
        [a.format(port=port) for a in argv], f"{variant}-{n}-server", env, root=_root_of(variant)
    )
    clients: list[subprocess.Popen[str]] = []
    publisher: subprocess.Popen[str] | None = None
    profiler: subprocess.Popen[str] | None = None
    try:
        _wait_port(port, server)
        time.sleep(1.0)
        job = {"host": "127.0.0.1", "port": port, "path": "/ws/v1/", "token": token}
        warm = _spawn(["bench/ws/client.py"], f"{variant}-{n}-warm", env, pipe=True)
        clients.append(warm)
        _ask(warm, {**job, "topics": topics[:WARM_CONNECTIONS], "concurrency": 10})
        time.sleep(3.0)
        result.rss_before_kb = rss_kb(server.pid)
        body = topics[WARM_CONNECTIONS : WARM_CONNECTIONS + n]
        started = time.monotonic()
        share = -(-len(body) // CLIENT_PROCESSES)
        for k in range(CLIENT_PROCESSES):
            proc = _spawn(["bench/ws/client.py"], f"{variant}-{n}-client{k}", env, pipe=True)
            assert proc.stdin is not None
            part = body[k * share : (k + 1) * share]
            proc.stdin.write(json.dumps({**job, "topics": part, "concurrency": 100}) + "\n")
            proc.stdin.flush()
            clients.append(proc)
        for proc in clients[1:]:
            ready = _read(proc)
            if "ready" not in ready:
                raise RuntimeError(f"client failed: {ready}")
        result.connect_seconds = time.monotonic() - started
        time.sleep(args.settle)
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(2.0)
        result.rss_after_kb = rss_kb(server.pid)
        result.idle_server_cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
        result.rss_per_conn_kb = (result.rss_after_kb - result.rss_before_kb) / n
        print(
            f"  {n} connected in {result.connect_seconds:.1f} s; RSS {result.rss_before_kb} -> "
            f"{result.rss_after_kb} KiB = {result.rss_per_conn_kb:.1f} KiB/conn; idle CPU "
            f"{result.idle_server_cpu:.1%}",
            flush=True,
        )

        publisher = _spawn(["bench/ws/publisher.py"], f"{variant}-{n}-publisher", env, pipe=True)
        _ask(publisher, {"mode": mode, "topics": topics[: WARM_CONNECTIONS + n], "tenant_id": 1})
        if variant in args.profile:  # sample the server through the 1,000/s step
            profiler = _start_profile(server.pid, variant, n, args.warmup + args.latency_seconds)
        lat = run_step(1000, server, clients, publisher, args.warmup, args.latency_seconds)
        result.latency_1000 = lat
        if profiler is not None:
            profiler.wait(timeout=60)
            profiler = None
        print(_show(lat), flush=True)
        if not _drain(clients):
            result.note = "backlog did not drain after the 1,000/s step"
            return result
        # The ladder reuses the 1,000/s latency step for its 1,000/s rung.
        last_ok, failed_at = 0, None
        for rate in [] if args.no_ladder else RATES:
            if rate == 1000:
                step, drained = lat, True
            else:
                step = run_step(rate, server, clients, publisher, args.warmup, args.duration)
                print(_show(step), flush=True)
                result.steps.append(step)
                drained = _drain(clients)
            if not step.sustained or not drained:
                failed_at = rate
                break
            last_ok = rate
        if failed_at is not None and last_ok and failed_at - last_ok >= 1000:
            mid = (last_ok + failed_at) // 2 // 250 * 250
            step = run_step(mid, server, clients, publisher, args.warmup, args.duration)
            print(_show(step), flush=True)
            result.steps.append(step)
            _drain(clients)
            if step.sustained:
                last_ok = mid
        result.saturation = last_ok
        result.peak_delivered = max([s.delivered_rate for s in [lat, *result.steps]], default=0.0)
        costs = sorted(
            s.server_us_per_frame for s in [lat, *result.steps] if s.sustained and s.target >= 2000
        ) or sorted(s.server_us_per_frame for s in [lat, *result.steps])
        result.us_per_frame = costs[len(costs) // 2]
        if any(s.published_rate < DELIVERED_MIN * s.target for s in result.steps):
            result.note = "publisher fell short of the target at some step"
        return result
    finally:
        for proc in clients:
            _stop(proc)
        _stop(publisher)
        _stop(profiler)
        _stop(server)


# --- profile --------------------------------------------------------------------------------
def _start_profile(pid: int, variant: str, n: int, seconds: float) -> subprocess.Popen[str]:
    out = HERE / f"profile-{variant}-{n}.txt"
    log = (LOGS / "py-spy.log").open("w")
    return subprocess.Popen(
        [
            f"{EXTRA}/bin/py-spy",
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=log,
        stderr=log,
        text=True,
    )


def summarise_profile(path: Path, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [f.split(" (")[0] + " " + _file_of(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    rows = ["| self % | function |", "| ---: | --- |"]
    rows += [f"| {c / total:.1%} | `{f}` |" for f, c in own.most_common(top)]
    rows += ["", "| inclusive % | function |", "| ---: | --- |"]
    rows += [f"| {c / total:.1%} | `{f}` |" for f, c in inclusive.most_common(top)]
    return "\n".join(rows)


def _file_of(frame: str) -> str:
    if "(" not in frame:
        return ""
    location = frame.split(" (", 1)[1].rstrip(")")
    for marker in ("site-packages/", "/wsb/", "/main/"):
        if marker in location:
            return location.split(marker, 1)[1]
    return location.rsplit("/", 1)[-1]


# --- report ---------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def tables(results: list[Result]) -> str:
    out: list[str] = []
    for n in sorted({r.clients for r in results}):
        rows = [r for r in results if r.clients == n]
        by = {r.variant: r for r in rows}
        refs = [v for v in ("stock-core", "stock-pubsub", "ceiling-script", "ceiling") if v in by]
        out += [f"### {n:,} clients", ""]
        head = "| variant | saturation frames/s | peak delivered/s | p50 @1k/s ms | p99 @1k/s ms"
        head += " | KiB/idle conn | idle CPU | server µs/frame | frames/s per busy core |"
        out += [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            lat = r.latency_1000
            out.append(
                f"| {r.variant} | {r.saturation:,} | {r.peak_delivered:,.0f} | "
                f"{_fmt(lat.p50_ms if lat else None)} | {_fmt(lat.p99_ms if lat else None)} | "
                f"{r.rss_per_conn_kb:.1f} | {r.idle_server_cpu:.1%} | {r.us_per_frame:.0f} | "
                f"{1e6 / r.us_per_frame if r.us_per_frame else 0:,.0f} |"
            )
        out.append("")
        if refs:
            out += [
                "Ratios, design variant / reference (same run; saturation ↑ better, "
                "p99 and KiB ↓ better):",
                "",
            ]
            out += [
                "| variant | vs | saturation | p99 @1k/s | KiB/conn |",
                "| --- | --- | ---: | ---: | ---: |",
            ]
            for r in rows:
                if not r.variant.startswith("design"):
                    continue
                for ref in refs:
                    b = by[ref]
                    sat = r.saturation / b.saturation if b.saturation else None
                    rp = r.latency_1000.p99_ms if r.latency_1000 else None
                    bp = b.latency_1000.p99_ms if b.latency_1000 else None
                    p99 = rp / bp if rp and bp else None
                    kb = r.rss_per_conn_kb / b.rss_per_conn_kb if b.rss_per_conn_kb else None
                    sat_text = f"{sat:.2f}x" if sat else "-"
                    p99_text = f"{p99:.2f}x" if p99 else "-"
                    kb_text = f"{kb:.2f}x" if kb else "-"
                    out.append(f"| {r.variant} | {ref} | {sat_text} | {p99_text} | {kb_text} |")
            out.append("")
        out += [
            "Steps (rate: published/s, delivered/s, p50/p99 ms, CPU cores server / "
            "clients / publisher / redis-server):",
            "",
        ]
        out += [
            "| variant | target/s | published/s | delivered/s | p50 | p99 | server CPU | "
            "server µs/frame | client CPU | publisher CPU | Redis CPU | load avg | ok |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| --- |",
        ]
        for r in rows:
            for s in [r.latency_1000, *r.steps] if r.latency_1000 else r.steps:
                out.append(
                    f"| {r.variant} | {s.target:,} | {s.published_rate:,.0f} | "
                    f"{s.delivered_rate:,.0f} | {_fmt(s.p50_ms)} | {_fmt(s.p99_ms)} | "
                    f"{s.server_cpu:.2f} | {s.server_us_per_frame:.0f} | {s.client_cpu:.2f} | "
                    f"{s.publisher_cpu:.2f} | {s.redis_cpu:.2f} | {s.load_average:.1f} | "
                    f"{'yes' if s.sustained else 'no'} |"
                )
        out.append("")
        notes = [f"{r.variant}: {r.note}" for r in rows if r.note]
        if notes:
            out += ["Notes: " + "; ".join(notes), ""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000])
    parser.add_argument("--servers", nargs="+", default=DEFAULT_SERVERS, choices=list(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="short steps, a smoke run")
    parser.add_argument("--profile", nargs="*", default=[], help="py-spy these variants at 1,000/s")
    parser.add_argument("--no-ladder", action="store_true", help="only the 1,000/s step")
    parser.add_argument("--output", default="last_run")
    args = parser.parse_args()
    args.warmup, args.duration, args.latency_seconds, args.settle = (
        (1.0, 3.0, 4.0, 2.0) if args.quick else (2.0, 8.0, 12.0, 5.0)
    )
    environment()
    _raise_nofile()
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from realtime.clients import sync_redis

    sync_redis().flushdb()  # db 9 is this benchmark's own
    token = issue_token()
    biggest = max(args.clients) + WARM_CONNECTIONS
    topics = [f"job:{uuid.uuid4()}" for _ in range(biggest)]
    print(f"logs in {LOGS}; seeding {biggest} topics", flush=True)
    seed_design_topics(topics)

    results: list[Result] = []
    for n in args.clients:
        for variant in args.servers:
            print(f"{variant}, {n} clients ({VARIANTS[variant][3]})", flush=True)
            try:
                results.append(measure(variant, n, topics, token, args))
            except Exception as exc:  # noqa: BLE001 - one broken variant must not end the run
                print(f"  FAILED: {exc!r}", flush=True)
                results.append(Result(variant=variant, clients=n, note=f"failed: {exc!r}"))
    machine = (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    meta = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": machine,
        "args": sys.argv[1:],
        "load_average": os.getloadavg()[0],
    }
    (HERE / f"{args.output}.json").write_text(
        json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=1)
    )
    text = f"Run {meta['date']} on {machine}, args {' '.join(sys.argv[1:]) or '(defaults)'}; "
    text += f"load average at the end {meta['load_average']:.2f}.\n\n" + tables(results)
    for path in sorted(HERE.glob("profile-*.txt")):
        text += f"\n### Profile {path.stem}\n\n" + summarise_profile(path) + "\n"
    (HERE / f"{args.output}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
