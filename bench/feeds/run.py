"""The tenant feed benchmark (issue 13), one command: ``make bench-feeds``.

A staff dashboard of 500 running jobs, on one server process (uvicorn as production runs it,
``project.devrun.asgi_server_command``), measured two ways in the same run:

* **feed**: each dashboard connection subscribes to the tenant feed ``jobs`` (one
  subscription);
* **baseline, topics**: each dashboard connection subscribes to the 500 jobs one by one (500
  subscriptions; the server's limit of 100 per connection is raised to 500 for this run so the
  baseline can exist at all).

For D dashboards (``--dashboards``, default 1 and 10) and each way: the time to open a
dashboard (connect and every subscribe answered), the server's memory and idle CPU with the
dashboards open (the idle window spans a resync sweep), the Redis channels the process holds,
then the publish rate over the 500 jobs raised in steps (``bench/ws/publisher.py``, the real
state script) until delivery falls behind: frames/s delivered, p50/p99 publish→receive, and
server CPU per delivered frame. A step is sustained when at least 95 % of the frames published
in its window arrive within 1 s of its end and p99 stays under 500 ms (as in bench/ws).

First, the Redis cost of the feed's extra PUBLISH per change (``bench/feeds/redis_cost.py``).

Everything runs against a private ``redis-server`` on a free port (its counters are this
benchmark's alone) and no database query is made (the ASGI server needs a database URL to
start; ``devservices`` finds or starts PostgreSQL). Writes ``bench/feeds/RESULTS.md`` and
``bench/feeds/last_run.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ws.run import _percentile, cpu_seconds, rss_kb  # noqa: E402

LOGS = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
PY = sys.executable
REDIS_SERVER = "/usr/bin/redis-server"
TENANT_ID = 1
USER_ID = 1
ITEMS = 500
P99_LIMIT_MS = 500.0  # as bench/ws: these shared machines stall for 100 ms at times
DELIVERED_MIN = 0.95
RATES = [250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6500, 8000, 10000, 13000, 16000]
WAYS = ("feed", "topics")


@dataclass
class Step:
    rate: int
    published_rate: float
    delivered_rate: float
    delivered_share: float
    p50_ms: float | None
    p99_ms: float | None
    server_cpu: float
    publisher_cpu: float
    client_cpu: float
    server_us_per_frame: float
    sustained: bool


@dataclass
class Result:
    way: str
    dashboards: int
    open_ms: list[float] = field(default_factory=list)
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    idle_server_cpu: float = 0.0
    redis_channels: int = 0
    steps: list[Step] = field(default_factory=list)
    sustained_rate: int = 0
    sustained_frames: float = 0.0
    us_per_frame: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # the machine's load average at start and end
    note: str = ""


# --- services -------------------------------------------------------------------------------
@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """Debian's redis-server on a free port, no persistence; yields its URL."""
    import redis

    from project import devservices

    if shutil.which(REDIS_SERVER) is None:
        raise SystemExit(f"{REDIS_SERVER} is needed: apt-get install redis-server")
    port = devservices.free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        devservices.stop_process(process)


def setup_django(redis_url: str) -> None:
    from project import devservices

    services = devservices.ensure_services(with_moto=False)
    os.environ.update(services.env)
    os.environ["REDIS_URL"] = redis_url
    os.environ["DJANGO_ENV"] = "dev"
    os.environ["DEBUG"] = "false"
    os.environ["DB_POOL"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["ACCESS_TOKEN_LIFETIME_SECONDS"] = "86400"  # noqa: S105 - no expiry mid-run
    os.environ["REALTIME_MAX_CONNECTIONS_PER_USER"] = "1000000"
    # The baseline needs 500 subscriptions on one connection, subscribed in one burst.
    os.environ["REALTIME_MAX_SUBSCRIPTIONS"] = str(ITEMS)
    os.environ["REALTIME_RATE_PER_SECOND"] = "100000"
    os.environ["REALTIME_RATE_BURST"] = "100000"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ["PYTHONPATH"] = str(ROOT)
    import django

    django.setup()


def issue_token() -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken()
    token["user_id"] = USER_ID
    token["tenant_id"] = TENANT_ID
    token["role"] = "staff"
    return str(token)


def seed(topics: list[str]) -> None:
    from realtime import store
    from realtime.keys import Topic
    from realtime.state import Change

    for raw in topics:
        topic = Topic.parse(raw)
        change = Change(status="PENDING", owner_id=USER_ID, job_type="excel_import", attempt=0)
        store.publish(TENANT_ID, topic, change)
        store.publish(TENANT_ID, topic, Change(status="PROCESSING", attempt=1))


# --- processes ------------------------------------------------------------------------------
def _spawn(args: list[str], name: str, pipe: bool = False) -> subprocess.Popen[str]:
    log = (LOGS / f"{name}.log").open("w")
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=dict(os.environ),
        stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
        stdout=subprocess.PIPE if pipe else log,
        stderr=log,
        text=True,
        bufsize=1,
    )


def _ask(process: subprocess.Popen[str], payload: dict[str, Any]) -> dict[str, Any]:
    assert process.stdin is not None
    process.stdin.write(json.dumps(payload) + "\n")
    process.stdin.flush()
    return _read(process)


def _read(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"process {process.args!r} exited; see {LOGS}")
    return dict(json.loads(line))


def _stop(process: subprocess.Popen[str] | None) -> None:
    from project import devservices

    devservices.stop_process(process)


def _drain(client: subprocess.Popen[str], limit: float = 20.0) -> bool:
    """Wait until no frame arrives for a second (the server's backlog is delivered)."""
    deadline = time.monotonic() + limit
    _ask(client, {"cmd": "reset", "since": 2**62})
    last = -1
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = int(_ask(client, {"cmd": "report", "until": 0})["frames"])
        if now == last:
            return True
        last = now
    return False


# --- measurement ----------------------------------------------------------------------------
def run_step(
    rate: int,
    dashboards: int,
    server: subprocess.Popen[str],
    client: subprocess.Popen[str],
    publisher: subprocess.Popen[str],
    args: argparse.Namespace,
) -> Step:
    start = time.time_ns() // 1000 + 300_000
    window_start = start + int(args.warmup * 1e6)
    window_end = window_start + int(args.duration * 1e6)
    _ask(client, {"cmd": "reset", "since": window_start})
    pids = {"server": server.pid, "publisher": publisher.pid, "client": client.pid}
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    t0 = time.monotonic()
    pub = _ask(publisher, {"rate": rate, "window_start": window_start, "window_end": window_end})
    elapsed = time.monotonic() - t0
    cpu = {k: (cpu_seconds(p) - cpu0[k]) / elapsed for k, p in pids.items()}
    time.sleep(1.0)  # frames published in the window may arrive up to 1 s after it
    latencies = sorted(_ask(client, {"cmd": "report", "until": window_end})["latency_us"])
    seconds = (window_end - window_start) / 1e6
    published = int(pub["window_sent"]) * dashboards  # each change is one frame per dashboard
    delivered = len(latencies)
    share = delivered / published if published else 0.0
    p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
    sustained = (
        pub["window_sent"] >= DELIVERED_MIN * rate * seconds
        and share >= DELIVERED_MIN
        and p99 is not None
        and p99 <= P99_LIMIT_MS
    )
    return Step(
        rate=rate,
        published_rate=pub["window_sent"] / seconds,
        delivered_rate=delivered / seconds,
        delivered_share=share,
        p50_ms=p50,
        p99_ms=p99,
        server_cpu=cpu["server"],
        publisher_cpu=cpu["publisher"],
        client_cpu=cpu["client"],
        server_us_per_frame=cpu["server"] / (delivered / seconds) * 1e6 if delivered else 0.0,
        sustained=sustained,
    )


def _show(step: Step) -> str:
    p50 = f"{step.p50_ms:.1f}" if step.p50_ms is not None else "-"
    p99 = f"{step.p99_ms:.1f}" if step.p99_ms is not None else "-"
    return (
        f"    {step.rate:>6} changes/s: delivered {step.delivered_rate:8.0f} frames/s "
        f"({step.delivered_share:6.1%})  p50 {p50:>6} p99 {p99:>6} ms  cpu server "
        f"{step.server_cpu:.2f} pub {step.publisher_cpu:.2f} client {step.client_cpu:.2f}  "
        f"{step.server_us_per_frame:.0f} µs/frame  {'ok' if step.sustained else 'FAIL'}"
    )


def measure(
    way: str, dashboards: int, topics: list[str], token: str, args: argparse.Namespace
) -> Result:
    import redis

    from project import devrun, devservices

    result = Result(way=way, dashboards=dashboards)
    load_start = os.getloadavg()[0]
    port = devservices.free_port()
    server = _spawn(devrun.asgi_server_command("127.0.0.1", port), f"{way}-{dashboards}-server")
    client: subprocess.Popen[str] | None = None
    publisher: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 40
        while not devservices.port_open("127.0.0.1", port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; see {LOGS}")
            time.sleep(0.2)
        time.sleep(1.0)
        result.rss_before_kb = rss_kb(server.pid)
        client = _spawn([PY, "bench/feeds/client.py"], f"{way}-{dashboards}-client", pipe=True)
        job = {
            "host": "127.0.0.1",
            "port": port,
            "path": "/ws/v1/",
            "token": token,
            "mode": way,
            "topics": topics,
            "dashboards": dashboards,
        }
        ready = _ask(client, job)
        if "ready" not in ready:
            raise RuntimeError(f"client failed: {ready}")
        result.open_ms = list(ready["open_ms"])
        time.sleep(2.0)
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(args.idle)  # spans at least one resync sweep (REALTIME_RESYNC_INTERVAL)
        result.idle_server_cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
        result.rss_after_kb = rss_kb(server.pid)
        result.redis_channels = len(redis.Redis.from_url(os.environ["REDIS_URL"]).pubsub_channels())
        print(
            f"  {way}, {dashboards} dashboard(s): opened in {_median(result.open_ms):.0f} ms "
            f"(median), RSS +{result.rss_after_kb - result.rss_before_kb} KiB, idle CPU "
            f"{result.idle_server_cpu:.1%}, {result.redis_channels} Redis channels",
            flush=True,
        )
        publisher = _spawn(
            [PY, "bench/ws/publisher.py"], f"{way}-{dashboards}-publisher", pipe=True
        )
        _ask(publisher, {"mode": "design", "topics": topics, "tenant_id": TENANT_ID})
        for rate in RATES:
            step = run_step(rate, dashboards, server, client, publisher, args)
            print(_show(step), flush=True)
            result.steps.append(step)
            drained = _drain(client)
            if not step.sustained or not drained:
                break
            result.sustained_rate = rate
            result.sustained_frames = step.delivered_rate
        ok = [s.server_us_per_frame for s in result.steps if s.sustained and s.rate >= 1000]
        costs = sorted(ok or [s.server_us_per_frame for s in result.steps])
        result.us_per_frame = costs[len(costs) // 2] if costs else 0.0
        result.load = (load_start, os.getloadavg()[0])
        if result.steps and result.steps[-1].published_rate < DELIVERED_MIN * result.steps[-1].rate:
            result.note = (
                "the publisher fell short at the last step: the limit may be the publisher"
            )
        return result
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                _ask(client, {"cmd": "quit"})
        _stop(client)
        _stop(publisher)
        _stop(server)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


# --- report ---------------------------------------------------------------------------------
def tables(cost: dict[str, Any], results: list[Result], args: argparse.Namespace) -> str:
    base, feeds, heard = cost["baseline"], cost["feeds"], cost["feeds+listener"]
    lines = [
        "# Tenant feed benchmark",
        "",
        f"`make bench-feeds`, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()} "
        f"{os.cpu_count()} vCPU, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.1f} at the end. One server process (uvicorn, websockets-sansio, "
        "as `make demo` and production run it), a private redis-server, the real state script.",
        "",
        "## Redis cost of the feed per change",
        "",
        f"{base['changes']:,} changes per scenario ({JOBS_PER_ROUND} jobs through PENDING, "
        f"PROCESSING, {PROGRESS_PER_JOB} progress reports and DONE), pipelined per step, one "
        "subscriber on each job's channel; median of 3 interleaved rounds. Baseline: the same "
        "script without the feed's PUBLISH line (the script before feeds).",
        "",
        "| per change | baseline (no feed) | feed, no dashboard open "
        "| feed, one dashboard process |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows = [
        ("Redis commands run by the script", "commands_per_change", "{:.2f}"),
        ("of which PUBLISH", "publishes_per_change", "{:.2f}"),
        ("bytes in (the EVALSHA request)", "bytes_in_per_change", "{:.0f}"),
        ("bytes out (reply + pub/sub deliveries)", "bytes_out_per_change", "{:.0f}"),
        ("script time in Redis, µs", "script_us_per_change", "{:.1f}"),
        ("changes/s through one pipelined client", "changes_per_second", "{:,.0f}"),
    ]
    for label, key, fmt in rows:
        lines.append(
            f"| {label} | {fmt.format(base[key])} | {fmt.format(feeds[key])} | "
            f"{fmt.format(heard[key])} |"
        )
    lines += [
        "",
        f"Ratios to the baseline: script time {_ratio(feeds, base, 'script_us_per_change')} "
        f"with nobody on the feed, {_ratio(heard, base, 'script_us_per_change')} with a "
        "dashboard process subscribed; bytes out "
        f"{_ratio(heard, base, 'bytes_out_per_change')} with one (each process holding a "
        "dashboard of the tenant receives each change once more); bytes in "
        f"+{feeds['bytes_in_per_change'] - base['bytes_in_per_change']:.0f} per change "
        "(the feed channel's name).",
        "",
        "## The dashboard: 500 jobs, feed against 500 subscriptions",
        "",
        f"{ITEMS} running jobs; publish rate raised in steps ({args.warmup:g} s warm-up, "
        f"{args.duration:g} s window) until under {DELIVERED_MIN:.0%} of the window's frames "
        f"arrive within 1 s or p99 passes {P99_LIMIT_MS:g} ms. Each change is one frame to each "
        "dashboard. Baseline: every dashboard connection subscribes to the 500 jobs one by one "
        "(the per-connection limit raised from 100 to 500 for the run).",
        "",
        "| dashboards | way | open one dashboard, ms | server RSS added, KiB | idle server CPU | "
        "Redis channels | sustained changes/s | frames/s delivered | p50 / p99 ms at it | "
        "server µs per frame | frames/s per server core |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        best = next((s for s in r.steps if s.rate == r.sustained_rate), None)
        lat = f"{best.p50_ms:.1f} / {best.p99_ms:.1f}" if best and best.p99_ms is not None else "-"
        lines.append(
            f"| {r.dashboards} | {'**feed**' if r.way == 'feed' else 'baseline: 500 topics'} | "
            f"{_median(r.open_ms):.0f} | {r.rss_after_kb - r.rss_before_kb:,} | "
            f"{r.idle_server_cpu:.1%} | {r.redis_channels} | {r.sustained_rate:,} | "
            f"{r.sustained_frames:,.0f} | {lat} | {r.us_per_frame:.0f} | "
            f"{1e6 / r.us_per_frame if r.us_per_frame else 0:,.0f} |"
        )
    lines += [
        "",
        "Server µs per frame is the server process's CPU time over the frames it delivered "
        "(median of the sustained steps from 1,000 changes/s, else of all): unlike frames/s it "
        "does not depend on how much of the shared CPU the process got. Frames/s per server core "
        "is 10^6 / that: what one process would sustain with a core to itself.",
        "",
        "Ratios, feed to baseline, same run:",
        "",
    ]
    for d in sorted({r.dashboards for r in results}):
        feed = next((r for r in results if r.way == "feed" and r.dashboards == d), None)
        topics = next((r for r in results if r.way == "topics" and r.dashboards == d), None)
        if feed is None or topics is None:
            continue
        added = {r.way: r.rss_after_kb - r.rss_before_kb for r in (feed, topics)}
        lines.append(
            f"- {d} dashboard(s): sustained frames/s "
            f"{_ratio(feed.sustained_frames, topics.sustained_frames)}, server µs per frame "
            f"{_ratio(feed.us_per_frame, topics.us_per_frame)} ({same_rate_cost(feed, topics)}), "
            "time to open "
            f"{_ratio(_median(feed.open_ms), _median(topics.open_ms))}, server memory added "
            f"{_ratio(added['feed'], added['topics'])}, idle CPU "
            f"{_ratio(feed.idle_server_cpu, topics.idle_server_cpu)}."
        )
    lines += ["", "Every step:", ""]
    for r in results:
        lines.append(
            f"- {r.way}, {r.dashboards} dashboard(s), load average {r.load[0]:.1f} → "
            f"{r.load[1]:.1f}{': ' + r.note if r.note else ''}"
        )
        lines += [f"  {_show(s).strip()}" for s in r.steps]
    lines += [
        "",
        "The list endpoint that fills the dashboard before the feed streams it: `make "
        "bench-lists` (bench/lists/RESULTS.md), p99 of a page on 100,000 rows.",
        "",
        "Figures move ±30 % between days on these shared machines; compare within one run.",
        "",
    ]
    return "\n".join(lines)


def same_rate_cost(feed: Result, topics: Result) -> str:
    """Server CPU per frame, feed to baseline, at the rates both sustained (from 1,000/s)."""
    theirs = {s.rate: s.server_us_per_frame for s in topics.steps if s.sustained}
    ratios = sorted(
        s.server_us_per_frame / theirs[s.rate]
        for s in feed.steps
        if s.sustained and s.rate >= 1000 and theirs.get(s.rate)
    )
    if not ratios:
        return "no common sustained rate from 1,000/s"
    return (
        f"{ratios[len(ratios) // 2]:.2f}x at the same rates, {ratios[0]:.2f} to {ratios[-1]:.2f}x "
        f"over {len(ratios)}"
    )


def _ratio(a: Any, b: Any, key: str | None = None) -> str:
    """``a / b`` as a ratio (of ``a[key] / b[key]`` when ``key`` is given)."""
    if key is not None:
        a, b = a[key], b[key]
    return f"{a / b:.2f}x" if b else "-"


from bench.feeds.redis_cost import JOBS_PER_ROUND, PROGRESS_PER_JOB  # noqa: E402


def report_only(path: Path, args: argparse.Namespace) -> None:
    """Write RESULTS.md again from a ``last_run.json`` (after a change to the report)."""
    data = json.loads(path.read_text())
    results = []
    for raw in data["results"]:
        steps = [Step(**step) for step in raw.pop("steps")]
        raw["load"] = tuple(raw.get("load", (0.0, 0.0)))
        results.append(Result(**raw, steps=steps))
    (HERE / "RESULTS.md").write_text(tables(data["cost"], results, args))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dashboards", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--idle", type=float, default=6.0)
    parser.add_argument("--quick", action="store_true", help="short windows, one dashboard count")
    parser.add_argument("--report-only", type=Path, help="rewrite RESULTS.md from this JSON")
    args = parser.parse_args()
    if args.report_only is not None:
        report_only(args.report_only, args)
        return 0
    if args.quick:
        args.dashboards, args.warmup, args.duration, args.idle = [args.dashboards[0]], 1.0, 2.0, 2.0
    with private_redis() as url:
        setup_django(url)
        from bench.feeds import redis_cost

        print("Redis cost per change (baseline script vs the feed's)...", flush=True)
        cost = redis_cost.measure(url)
        for key, figures in cost.items():
            print(
                f"  {key}: {json.dumps({k: round(v, 2) for k, v in figures.items()})}", flush=True
            )
        import redis as redis_lib

        redis_lib.Redis.from_url(url).flushdb()
        topics = [f"job:{uuid.uuid4()}" for _ in range(ITEMS)]
        seed(topics)
        token = issue_token()
        results = []
        for dashboards in args.dashboards:
            for way in WAYS:
                results.append(measure(way, dashboards, topics, token, args))
    (HERE / "last_run.json").write_text(
        json.dumps({"cost": cost, "results": [asdict(r) for r in results]}, indent=2)
    )
    report = tables(cost, results, args)
    (HERE / "RESULTS.md").write_text(report)
    print(report)
    print(f"logs: {LOGS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
