"""Scale benchmark, one command (``make bench-scale``):

    python -m bench.scale.run [--users 10000] [--connections N] [--processes 4] [--smoke]

On this machine, with private PostgreSQL, Redis (``infra/redis/redis.conf``) and moto servers
(``bench/scale/services.py``): the real project ASGI app in ``--processes`` uvicorn processes
(the production command, each on its own port), the workers at their hard caps in the
production layout (one process per slot: ai 5, video 3, messaging 5) and the outbox relay.
``--users`` users in academies of 200 (``bench/scale/model.py``) each hold one WebSocket,
opened by ``--client-processes`` client processes (``bench/scale/client.py``), each bound to
its own source address (127.0.0.2, 127.0.0.3, …) and spread round robin over the server
ports (as ``least_conn`` would). The run then:

1. connects every socket, settles, measures RSS per connection per server process;
2. ``peak``: drives the model's peak-hour mix for ``--duration`` s: jobs created through the
   API (messages, Excel imports, video uploads with real encodes), workers publishing
   progress, dashboards watching, fallback polling, detail and list reads;
3. ``burst``: the same mix times ``--burst`` for ``--burst-duration`` s (queues build up at
   the caps), then ``drain``: back to the peak mix until the queues are empty again;
4. ``storm``: SIGTERM one server process, start it again on its port, and time its clients'
   return (reconnect with backoff and full jitter, resubscribe), sampling Redis every 0.25 s.

Reported per server process: sockets, delivered state frames/s, p50/p99 publish→deliver,
RSS per connection, CPU; Redis CPU, ops/s, memory and command mix (INFO); database
connections in ``pg_stat_activity`` per process type against the budget formula of ADR 0002;
queue depths; the machine's load and what other work used. Writes
``bench/scale/<output>.json`` and ``.md`` (RESULTS.md quotes a committed run).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.scale import model as scale_model  # noqa: E402
from bench.scale.report import markdown  # noqa: E402
from bench.scale.services import (  # noqa: E402
    Managed,
    Services,
    cpu_seconds,
    free_port,
    raise_open_files,
    rss_bytes,
    start_moto,
    start_postgres,
    start_redis,
    wait_port,
)
from project import devrun  # noqa: E402 - pure: builds the production uvicorn argv

HERE = Path(__file__).resolve().parent
PY = sys.executable
DB_POOL_MAX_SIZE = 10  # project/settings.py default, used by every ASGI process and the relay
DB_POOL_MIN_SIZE = 2
MAX_CONNECTIONS = 100
# Commands whose rates the storm timeline breaks out: handshakes run the acquire script
# (ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE), closes ZREM, resubscriptions read the hashes and
# SUBSCRIBE, the per-process refresh is one script of ZADD XX + PEXPIRE per socket.
STORM_COMMANDS = (
    "zadd",
    "zcard",
    "zrem",
    "hgetall",
    "hmget",
    "subscribe",
    "unsubscribe",
    "publish",
)


# --- sampling -----------------------------------------------------------------------------
def _proc_total(pid: int) -> float:
    """CPU seconds of a process including its reaped children (ffmpeg, PostgreSQL backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def _machine_busy() -> float:
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _redis_info(client: Any) -> dict[str, Any]:
    info = client.info("all")
    return {
        "t": time.time(),
        "cpu": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
        "commands": int(info["total_commands_processed"]),
        "ops": int(info["instantaneous_ops_per_sec"]),
        "memory": int(info["used_memory"]),
        "clients": int(info["connected_clients"]),
        "connections_received": int(info["total_connections_received"]),
        "pubsub_channels": int(info["pubsub_channels"]),
        "keys": sum(int(v.get("keys", 0)) for k, v in info.items() if k.startswith("db")),
        "cmdstats": {
            k[len("cmdstat_") :]: int(v["calls"])
            for k, v in info.items()
            if k.startswith("cmdstat_")
        },
    }


@dataclass
class Sample:
    t: float
    phase: str
    cpu: dict[str, float]
    rss: dict[str, int]
    redis: dict[str, Any]
    db: dict[str, int]
    queues: dict[str, tuple[int, int]]
    machine_busy: float
    load: float


@dataclass
class Sampler:
    """Samples every process, Redis, PostgreSQL and the queues every ``interval`` seconds."""

    run: Run
    interval: float = 2.0
    samples: list[Sample] = field(default_factory=list)
    phase: str = "setup"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append(self.take())
            self._stop.wait(self.interval)

    def take(self) -> Sample:
        run = self.run
        cpu: dict[str, float] = {}
        rss: dict[str, int] = {}
        for name, managed in run.tracked():
            with contextlib.suppress(OSError):
                cpu[name] = _proc_total(managed.pid)
                rss[name] = rss_bytes(managed.pid)
        with contextlib.suppress(OSError):
            cpu["postgres"] = _proc_total(run.pg_pid) + sum(
                cpu_seconds(child) for child in _children(run.pg_pid)
            )
        db: dict[str, int] = {}
        with run.pg.cursor() as cur:
            cur.execute(
                "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity"
                " WHERE datname = 'academy_scale' GROUP BY 1"
            )
            for name, count in cur.fetchall():
                db[name or "(none)"] = int(count)
        queues = {}
        for kind, url in run.queue_urls.items():
            attrs = run.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            queues[kind] = (
                int(attrs["ApproximateNumberOfMessages"]),
                int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            )
        return Sample(
            t=time.time(),
            phase=self.phase,
            cpu=cpu,
            rss=rss,
            redis=_redis_info(run.redis),
            db=db,
            queues=queues,
            machine_busy=_machine_busy(),
            load=os.getloadavg()[0],
        )


# --- the run --------------------------------------------------------------------------------
@dataclass
class ClientProc:
    name: str
    process: subprocess.Popen[str]
    source: str
    ports: list[int]
    sockets: int

    def send(self, payload: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(payload) + "\n")
        self.process.stdin.flush()

    def read(self) -> dict[str, Any]:
        stdout: TextIO | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"client {self.name} exited (rc={self.process.poll()})")
        return json.loads(line)


@dataclass
class Run:
    args: argparse.Namespace
    services: Services
    asgi: list[Managed] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    workers: list[tuple[str, Managed]] = field(default_factory=list)
    others: dict[str, Managed] = field(default_factory=dict)
    clients: list[ClientProc] = field(default_factory=list)
    pg_pid: int = 0
    pg: Any = None
    redis: Any = None
    sqs: Any = None
    queue_urls: dict[str, str] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def tracked(self) -> list[tuple[str, Managed]]:
        out = [(f"asgi-{i}", m) for i, m in enumerate(self.asgi)]
        out += [(name, m) for name, m in self.workers]
        out += list(self.others.items())
        out += [(c.name, Managed(c.name, c.process, Path())) for c in self.clients]  # type: ignore[arg-type]
        return out

    def all(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        for client in self.clients:
            client.send(payload)
        return [client.read() for client in self.clients]


def _env(run: Run, db_url: str, redis_url: str, moto_url: str) -> dict[str, str]:
    return {
        "DJANGO_ENV": "dev",
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-2",
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        # A provider's send rate: 10 recipients per batch, a batch every 0.5 s (as `make demo`).
        "MESSAGING_BATCH_SIZE": "10",
        "MESSAGING_SEND_INTERVAL": "0.5",
        # Three encodes share two cores with everything else here.
        "VIDEO_ENCODE_THREADS": "1",
        "VIDEO_WORK_ROOT": str(run.services.workdir / "transcode"),
    }


def _with_app_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


def start_asgi(run: Run, index: int, port: int, db_url: str) -> Managed:
    argv = devrun.asgi_server_command("127.0.0.1", port, server="uvicorn")
    return run.services.spawn(
        f"asgi-{index}", argv, env={"DATABASE_URL": _with_app_name(db_url, f"bench-asgi-{index}")}
    )


def setup(run: Run) -> dict[str, Any]:
    args = run.args
    services = run.services
    print(f"work directory {services.workdir}", flush=True)
    t0 = time.monotonic()
    db_url = start_postgres(services, max_connections=MAX_CONNECTIONS)
    run.pg_pid = int((services.workdir / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    redis_url, redis_proc = start_redis(services)
    moto_url, moto_proc = start_moto(services)
    run.others["redis"] = redis_proc
    run.others["moto"] = moto_proc
    services.env.update(_env(run, db_url, redis_url, moto_url))
    (services.workdir / "transcode").mkdir()
    print(f"services up in {time.monotonic() - t0:.1f} s; seeding {args.users} users", flush=True)
    seed_dir = services.workdir / "seed"
    seed_dir.mkdir()
    subprocess.run(
        [
            PY,
            "-m",
            "bench.scale.seed",
            "--users",
            str(args.users),
            "--out",
            str(seed_dir),
            "--workbooks",
            str(args.workbooks),
            "--rows",
            str(args.import_rows),
        ],
        cwd=ROOT,
        env={**os.environ, **services.env},
        check=True,
        timeout=600,
    )
    seed = json.loads((seed_dir / "seed.json").read_text())
    print(f"seeded in {time.monotonic() - t0:.1f} s; starting servers and workers", flush=True)

    import boto3
    import psycopg
    import redis

    run.redis = redis.Redis.from_url(redis_url)
    run.pg = psycopg.connect(
        db_url.replace("postgres://", "postgresql://", 1),
        autocommit=True,
        application_name="bench-sampler",
    )
    run.sqs = boto3.client(  # moto accepts any credentials
        "sqs",
        endpoint_url=moto_url,
        region_name="ap-northeast-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
    )
    for kind in scale_model.CAPS:
        run.queue_urls[kind] = run.sqs.get_queue_url(QueueName=f"academy-{kind}")["QueueUrl"]

    run.ports = [free_port() for _ in range(args.processes)]
    for i, port in enumerate(run.ports):
        run.asgi.append(start_asgi(run, i, port, db_url))
    # Servers first: eighteen Django processes importing at once on two busy cores take minutes.
    for managed, port in zip(run.asgi, run.ports, strict=True):
        wait_port(port, process=managed.process, timeout=600, log=managed.log)
    for kind, cap in scale_model.CAPS.items():
        layout = [1] * cap if args.worker_layout == "instances" else [cap]
        for j, slots in enumerate(layout):
            name = f"worker-{kind}-{j}"
            run.workers.append(
                (
                    name,
                    services.spawn(
                        name,
                        [
                            PY,
                            "manage.py",
                            "run_worker",
                            "--queue",
                            kind,
                            "--concurrency",
                            str(slots),
                        ],
                        env={"DB_APPLICATION_NAME": f"bench-worker-{kind}"},
                    ),
                )
            )
    run.others["relay"] = services.spawn(
        "relay",
        [PY, "manage.py", "relay_outbox"],
        env={"DATABASE_URL": _with_app_name(db_url, "bench-relay")},
    )
    _warm(run)
    print(f"servers up in {time.monotonic() - t0:.1f} s; workers booting", flush=True)
    run.results["db_url"] = db_url
    return seed


def _wait_workers(run: Run, timeout: float = 600) -> None:
    """Until every worker process has opened its first long poll (its log says nothing at
    WARNING; the sign is an open SQS connection), or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [name for name, m in run.workers if not m.alive()]
        if dead:
            raise RuntimeError(f"workers exited: {dead}; see {run.services.workdir}")
        ready = 0
        for _, managed in run.workers:
            with contextlib.suppress(OSError):
                ready += int(bool(_tcp_peers(managed.pid)))
        if ready == len(run.workers):
            return
        time.sleep(1)
    raise RuntimeError(f"workers not polling after {timeout:.0f} s; see {run.services.workdir}")


def _tcp_peers(pid: int) -> set[str]:
    """Inodes of the process's sockets (any open TCP socket means it reached a service)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:"):
                inodes.add(target)
    return inodes


def _warm(run: Run) -> None:
    """A few requests per server process so that its baseline RSS includes a loaded app."""
    import http.client

    for port in run.ports:
        for path in ("/health/", "/health/ready/"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()


def client_jobs(run: Run, seed: dict[str, Any]) -> list[dict[str, Any]]:
    """Split the academies over the client processes; sockets round robin over the ports."""
    args = run.args
    mix = scale_model.derive(args.users)
    a = scale_model.Assumptions()
    k = args.client_processes
    tenants = seed["tenants"]
    share_limit = args.connections / args.users
    jobs: list[dict[str, Any]] = []
    for index in range(k):
        jobs.append(
            {
                "index": index,
                "source": f"127.0.0.{2 + index}",
                "host": "127.0.0.1",
                "ports": run.ports,
                "connections": [],
                "tenants": {},
                "fixtures": seed["fixtures"],
                "model": {
                    "dashboard_share": a.dashboard_share_of_online_staff,
                    "fallback_share": a.fallback_share,
                    "teacher_recipients": a.teacher_message_recipients,
                    "staff_recipients": a.staff_message_recipients,
                },
            }
        )
    for t_index, tenant in enumerate(tenants):
        job = jobs[t_index % k]
        roles: dict[str, list[int]] = {"staff": [], "teacher": [], "student": []}
        by_role: dict[str, list[dict[str, Any]]] = {"staff": [], "teacher": [], "student": []}
        for user in tenant["users"]:
            role = "staff" if user["role"] in ("admin", "staff") else user["role"]
            by_role[role].append(user)
        for role, users in by_role.items():
            for user in users[: math.ceil(len(users) * share_limit)]:
                roles[role].append(user["user_id"])
                job["connections"].append(
                    [user["user_id"], tenant["tenant_id"], user["role"], user["token"], 0]
                )
        job["tenants"][str(tenant["tenant_id"])] = roles
    # Ports in a shuffled round robin (as least_conn balances): in user order every academy's
    # admin and first staff, its dashboards, would land on the same processes.
    every = [conn for job in jobs for conn in job["connections"]]
    ranks = list(range(len(every)))
    random.Random(14).shuffle(ranks)
    for rank, conn in zip(ranks, every, strict=True):
        conn[4] = run.ports[rank % len(run.ports)]
    # Rates per process: the model's peak-hour rates, split by each process's share of tenants.
    online = mix.online
    for job in jobs:
        share = len(job["tenants"]) / len(tenants)
        msg_teacher = online["teacher"] * a.teacher_messages_per_hour / 3600
        msg_staff = online["staff"] * a.staff_messages_per_hour / 3600
        job["rates"] = {
            "message_teacher": msg_teacher * share,
            "message_staff": msg_staff * share,
            "import": mix.kinds["ai"].arrivals_per_hour / 3600 * share,
            "upload": mix.kinds["video"].arrivals_per_hour / 3600 * share,
            "list_staff": online["staff"] / a.list_seconds["staff"] * share,
            "list_teacher": online["teacher"] / a.list_seconds["teacher"] * share,
            "list_student": online["student"] / a.list_seconds["student"] * share,
        }
    return jobs


def start_clients(run: Run, jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        name = f"client-{job['index']}"
        log = (run.services.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [PY, "-m", "bench.scale.client"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
        )
        client = ClientProc(name, process, job["source"], job["ports"], len(job["connections"]))
        client.send(job)
        run.clients.append(client)


# --- phases ---------------------------------------------------------------------------------
def _window(samples: list[Sample], phase: str) -> tuple[Sample, Sample] | None:
    chosen = [s for s in samples if s.phase == phase]
    if len(chosen) < 2:
        return None
    return chosen[0], chosen[-1]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    ports: dict[str, dict[str, Any]] = {}
    http: dict[str, dict[str, Any]] = {}
    jobs: dict[str, dict[str, Any]] = {}
    closes: dict[str, int] = {}
    errors: list[str] = []
    for report in reports:
        for port, stats in report["ports"].items():
            into = ports.setdefault(
                port,
                {
                    "state_frames": 0,
                    "snapshot_frames": 0,
                    "pongs": 0,
                    "other_frames": 0,
                    "latency_ms": [],
                    "errors": {},
                    "open": 0,
                    "sockets": 0,
                },
            )
            for key in (
                "state_frames",
                "snapshot_frames",
                "pongs",
                "other_frames",
                "open",
                "sockets",
            ):
                into[key] += stats[key]
            into["latency_ms"] += stats["latency_ms"]
            for code, n in stats["errors"].items():
                into["errors"][code] = into["errors"].get(code, 0) + n
        tally = report["http"]
        for name, statuses in tally["statuses"].items():
            into = http.setdefault(name, {"statuses": {}, "latency_ms": [], "errors": 0})
            for status, n in statuses.items():
                into["statuses"][str(status)] = into["statuses"].get(str(status), 0) + n
            into["latency_ms"] += tally["latencies"].get(name, [])
        for name, n in tally["errors"].items():
            http.setdefault(name, {"statuses": {}, "latency_ms": [], "errors": 0})["errors"] += n
        errors += tally["samples"]
        for kind, stats in report["jobs"].items():
            into = jobs.setdefault(
                kind, {"created": 0, "refused": {}, "finished": 0, "seq": [], "e2e_ms": []}
            )
            into["created"] += stats["created"]
            into["finished"] += stats["finished"]
            into["seq"] += stats["seq"]
            into["e2e_ms"] += stats["e2e_ms"]
            for status, n in stats["refused"].items():
                into["refused"][status] = into["refused"].get(status, 0) + n
        for code, n in report["closes"].items():
            closes[code] = closes.get(code, 0) + n
    return {
        "ports": ports,
        "http": http,
        "jobs": jobs,
        "closes": closes,
        "http_error_samples": errors[:10],
        "connect_failures": sum(r["connect_failures"] for r in reports),
        "watching": sum(r["watching"] for r in reports),
        "pings_sent": sum(r.get("pings_sent", 0) for r in reports),
    }


def summarize_phase(
    run: Run, sampler: Sampler, phase: str, merged: dict[str, Any], seconds: float
) -> dict[str, Any]:
    window = _window(sampler.samples, phase)
    out: dict[str, Any] = {"seconds": round(seconds, 1)}
    per_process = []
    for i, port in enumerate(run.ports):
        stats = merged["ports"].get(str(port), {})
        lat = stats.get("latency_ms", [])
        row = {
            "process": f"asgi-{i}",
            "port": port,
            "sockets": stats.get("sockets", 0),
            "open_at_end": stats.get("open", 0),
            "state_frames_per_s": stats.get("state_frames", 0) / seconds,
            "pongs_per_s": stats.get("pongs", 0) / seconds,
            "snapshot_frames": stats.get("snapshot_frames", 0),
            "latency_samples": len(lat),
            "p50_ms": _pct(lat, 50),
            "p99_ms": _pct(lat, 99),
            "max_ms": max(lat) if lat else None,
            "ws_errors": stats.get("errors", {}),
        }
        if window:
            first, last = window
            name = f"asgi-{i}"
            dt = last.t - first.t
            if name in first.cpu and name in last.cpu and dt > 0:
                row["cpu_cores"] = (last.cpu[name] - first.cpu[name]) / dt
            row["rss_mb"] = last.rss.get(name, 0) / 2**20
        per_process.append(row)
    out["per_process"] = per_process
    all_lat = [x for s in merged["ports"].values() for x in s["latency_ms"]]
    out["all"] = {
        "state_frames_per_s": sum(r["state_frames_per_s"] for r in per_process),
        "pongs_per_s": sum(r["pongs_per_s"] for r in per_process),
        "p50_ms": _pct(all_lat, 50),
        "p99_ms": _pct(all_lat, 99),
        "max_ms": max(all_lat) if all_lat else None,
        "latency_samples": len(all_lat),
    }
    out["http"] = {
        name: {
            "per_s": sum(v["statuses"].values()) / seconds,
            "statuses": v["statuses"],
            "errors": v["errors"],
            "p50_ms": _pct(v["latency_ms"], 50),
            "p99_ms": _pct(v["latency_ms"], 99),
        }
        for name, v in sorted(merged["http"].items())
    }
    out["jobs"] = {
        kind: {
            "created": v["created"],
            "refused": v["refused"],
            "finished": v["finished"],
            "events_per_job_median": statistics.median(v["seq"]) if v["seq"] else None,
            "created_to_terminal_p50_s": (_pct(v["e2e_ms"], 50) or 0) / 1000
            if v["e2e_ms"]
            else None,
            "created_to_terminal_p99_s": (_pct(v["e2e_ms"], 99) or 0) / 1000
            if v["e2e_ms"]
            else None,
        }
        for kind, v in sorted(merged["jobs"].items())
    }
    out["closes"] = merged["closes"]
    out["pings_sent_per_s"] = merged["pings_sent"] / seconds
    out["connect_failures"] = merged["connect_failures"]
    out["http_error_samples"] = merged["http_error_samples"]
    if window:
        out.update(system_window(run, sampler, window))
    return out


def system_window(run: Run, sampler: Sampler, window: tuple[Sample, Sample]) -> dict[str, Any]:
    first, last = window
    dt = last.t - first.t
    in_phase = [s for s in sampler.samples if first.t <= s.t <= last.t]
    r0, r1 = first.redis, last.redis
    cmd = {k: (r1["cmdstats"].get(k, 0) - r0["cmdstats"].get(k, 0)) / dt for k in r1["cmdstats"]}
    top = dict(sorted(((k, v) for k, v in cmd.items() if v > 0), key=lambda kv: -kv[1])[:12])
    ours = 0.0
    groups: dict[str, float] = {}
    for name in last.cpu:
        if name in first.cpu:
            used = (last.cpu[name] - first.cpu[name]) / dt
            ours += used
            group = name.rsplit("-", 1)[0] if name.startswith(("asgi", "client")) else name
            if name.startswith("worker"):
                group = "workers"
            groups[group] = groups.get(group, 0.0) + used
    machine = (last.machine_busy - first.machine_busy) / dt
    db_max: dict[str, int] = {}
    db_total_max = 0
    for s in in_phase:
        for name, n in s.db.items():
            db_max[name] = max(db_max.get(name, 0), n)
        db_total_max = max(db_total_max, sum(s.db.values()))
    queue_max = {k: max(s.queues.get(k, (0, 0))[0] for s in in_phase) for k in run.queue_urls}
    return {
        "redis": {
            "cpu_cores": (r1["cpu"] - r0["cpu"]) / dt,
            "commands_per_s": (r1["commands"] - r0["commands"]) / dt,
            "ops_per_s_max": max(s.redis["ops"] for s in in_phase),
            "memory_mb": r1["memory"] / 2**20,
            "clients": r1["clients"],
            "pubsub_channels": r1["pubsub_channels"],
            "keys": r1["keys"],
            "new_connections_per_s": (r1["connections_received"] - r0["connections_received"]) / dt,
            "top_commands_per_s": top,
        },
        "cpu_cores_by_group": groups,
        "cpu_cores_ours": ours,
        "cpu_cores_machine": machine,
        "cpu_cores_others": max(0.0, machine - ours),
        "load_avg": [round(s.load, 2) for s in in_phase[:: max(1, len(in_phase) // 6)]],
        "db_connections_max": db_max,
        "db_connections_total_max": db_total_max,
        "queue_visible_max": queue_max,
    }


def phase(run: Run, sampler: Sampler, name: str, seconds: float, scale: float) -> dict[str, Any]:
    print(f"phase {name}: {seconds:.0f} s, jobs at {scale:g}x the peak-hour rate", flush=True)
    # The burst multiplies the jobs started; list reads follow the users online, not the jobs.
    run.all({"cmd": "drive", "scale": scale, "reads": 1.0})
    run.all({"cmd": "report"})  # forget what came before
    sampler.phase = name
    started = time.monotonic()
    sampler.samples.append(sampler.take())
    time.sleep(seconds)
    sampler.samples.append(sampler.take())
    elapsed = time.monotonic() - started
    merged = merge_reports(run.all({"cmd": "report"}))
    summary = summarize_phase(run, sampler, name, merged, elapsed)
    commands = summary.get("redis", {}).get("commands_per_s", 0)
    print(
        f"  {summary['all']['state_frames_per_s']:.1f} state frames/s, p99 "
        f"{summary['all']['p99_ms']} ms; Redis {commands:.0f} commands/s",
        flush=True,
    )
    return summary


def drain(run: Run, sampler: Sampler, limit: float) -> dict[str, Any]:
    """Back at the peak mix: seconds until no queue has visible messages."""
    print("phase drain: until the queues are empty", flush=True)
    run.all({"cmd": "drive", "scale": 1.0})
    sampler.phase = "drain"
    started = time.monotonic()
    timeline = []
    depth0 = None
    while True:
        s = sampler.take()
        sampler.samples.append(s)
        visible = {k: v[0] for k, v in s.queues.items()}
        if depth0 is None:
            depth0 = visible
        timeline.append((round(time.monotonic() - started, 1), visible))
        if all(v == 0 for v in visible.values()) or time.monotonic() - started > limit:
            break
        time.sleep(2)
    merged = merge_reports(run.all({"cmd": "report"}))
    elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 1),
        "drained": all(v == 0 for v in timeline[-1][1].values()),
        "visible_at_start": depth0,
        "timeline": timeline[:: max(1, len(timeline) // 20)],
        "jobs": summarize_phase(run, sampler, "drain", merged, elapsed)["jobs"],
    }


def storm(run: Run, sampler: Sampler, db_url: str, limit: float) -> dict[str, Any]:
    """Restart server process 0; time until every one of its clients is back and resubscribed."""
    index, port = 0, run.ports[0]
    print(f"phase storm: restarting asgi-{index} (port {port})", flush=True)
    run.all({"cmd": "report"})
    watching = sum(r["watching"] for r in run.all({"cmd": "storm", "port": port}))
    sampler.phase = "storm"
    fast: list[dict[str, Any]] = []
    stop = threading.Event()

    def sample_redis() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                fast.append(_redis_info(run.redis))
            stop.wait(0.25)

    thread = threading.Thread(target=sample_redis, daemon=True)
    thread.start()
    time.sleep(2)
    t_kill = time.time()
    old = run.asgi[index]
    old.stop(sig=signal.SIGTERM, timeout=30)
    t_exit = time.time()
    new = start_asgi(run, index, port, db_url)
    run.asgi[index] = new
    wait_port(port, process=new.process, timeout=600, log=new.log)
    t_listen = time.time()
    cpu_listen = cpu_seconds(new.pid)
    back: list[float] = []
    while True:
        reports = run.all({"cmd": "storm_report"})
        back = [x for r in reports for x in r["back"]]
        # The limit counts from when the new process listens: its boot is timed apart.
        if len(back) >= watching or time.time() - t_listen > limit:
            break
        time.sleep(1)
    t_all = time.time()
    cpu_all = cpu_seconds(new.pid)
    time.sleep(3)
    stop.set()
    thread.join(2)
    rates = []
    for a, b in itertools.pairwise(fast):
        dt = b["t"] - a["t"]
        if dt > 0:
            mix = {
                name: round((b["cmdstats"].get(name, 0) - a["cmdstats"].get(name, 0)) / dt)
                for name in STORM_COMMANDS
            }
            rates.append(
                (
                    (a["t"] + b["t"]) / 2 - t_kill,
                    (b["commands"] - a["commands"]) / dt,
                    (b["cpu"] - a["cpu"]) / dt,
                    b["clients"],
                    {k: v for k, v in mix.items() if v},
                )
            )
    before = [r[1] for r in rates if r[0] < 0]
    # One-second windows as well: 0.25 s windows catch the burst, 1 s ones what a
    # CloudWatch-style per-second view would show.
    per_second = []
    for a, b in zip(fast, fast[4:], strict=False):
        if b["t"] > a["t"]:
            per_second.append((b["commands"] - a["commands"]) / (b["t"] - a["t"]))
    merged = merge_reports(run.all({"cmd": "report"}))
    return {
        "process": f"asgi-{index}",
        "sockets": watching,
        "back": len(back),
        "exit_s": round(t_exit - t_kill, 2),
        "listening_s": round(t_listen - t_kill, 2),
        "all_back_s": round(max(back), 2) if len(back) >= watching and back else None,
        "back_p50_s": _pct(back, 50),
        "back_p99_s": _pct(back, 99),
        "waited_s": round(t_all - t_kill, 1),
        "redis_commands_per_s_before": statistics.median(before) if before else None,
        "redis_commands_per_s_peak": max((r[1] for r in rates), default=None),
        "redis_commands_per_s_peak_1s": max(per_second, default=None),
        "new_process_cpu_s_until_all_back": round(cpu_all - cpu_listen, 2),
        "new_process_boot_cpu_s": round(cpu_listen, 2),
        "redis_cpu_peak": max((r[2] for r in rates), default=None),
        "redis_timeline": [
            (round(t, 2), round(ops), round(cpu, 3), clients, mix)
            for t, ops, cpu, clients, mix in rates
            if ops > 2 * (statistics.median(before) if before else 0) or t < 0
        ][:80],
        # Windows with the connection refresh (ZADD XX of every socket of a process, every 30 s)
        # against those with handshakes (the acquire script's ZCARD) and resubscriptions.
        "redis_refresh_peak": max(
            (ops for _, ops, _, _, mix in rates if mix.get("zadd", 0) > 5 * mix.get("zcard", 0)),
            default=None,
        ),
        "redis_reconnect_peak": max(
            (
                ops
                for _, ops, _, _, mix in rates
                if mix.get("zcard", 0) * 5 >= mix.get("zadd", 0) and mix.get("zcard", 0) > 0
            ),
            default=None,
        ),
        "closes": merged["closes"],
        "connect_failures": merged["connect_failures"],
    }


def execute(run: Run) -> dict[str, Any]:
    args = run.args
    seed = setup(run)
    sampler = Sampler(run)
    base = sampler.take()
    sampler.samples.append(base)
    jobs = client_jobs(run, seed)
    start_clients(run, jobs)
    sampler.start()
    sampler.phase = "connect"
    print(
        f"connecting {sum(c.sockets for c in run.clients)} sockets from "
        f"{len(run.clients)} client processes",
        flush=True,
    )
    started = time.monotonic()
    answers = run.all({"cmd": "connect", "concurrency": args.connect_concurrency})
    connect_s = time.monotonic() - started
    ready = sum(a["ready"] for a in answers)
    print(f"  {ready} open in {connect_s:.1f} s", flush=True)
    _wait_workers(run)  # they booted while the sockets connected
    sampler.phase = "idle"
    time.sleep(args.settle)
    idle = sampler.take()
    sampler.samples.append(idle)
    sockets_per_port = dict.fromkeys(run.ports, 0)
    for job in jobs:
        for conn in job["connections"]:
            sockets_per_port[conn[4]] += 1
    memory = []
    for i, port in enumerate(run.ports):
        name = f"asgi-{i}"
        grown = idle.rss[name] - base.rss[name]
        memory.append(
            {
                "process": name,
                "sockets": sockets_per_port[port],
                "rss_before_mb": base.rss[name] / 2**20,
                "rss_after_mb": idle.rss[name] / 2**20,
                "kib_per_socket": grown / 1024 / max(1, sockets_per_port[port]),
            }
        )
    client_rss = {c.name: idle.rss.get(c.name, 0) / 2**20 for c in run.clients}
    result: dict[str, Any] = {
        "connect": {
            "sockets": sum(sockets_per_port.values()),
            "open": ready,
            "failed": sum(a["failed"] for a in answers),
            "seconds": round(connect_s, 1),
            "per_second": ready / connect_s if connect_s else None,
            "memory": memory,
            "redis_memory_growth_mb": (idle.redis["memory"] - base.redis["memory"]) / 2**20,
            "redis_bytes_per_socket": (idle.redis["memory"] - base.redis["memory"]) / max(1, ready),
            "redis_clients": idle.redis["clients"],
            "client_rss_mb": client_rss,
        }
    }
    run.results["result"] = result  # what a failure in a later phase still reports
    conn_window = _window(
        [base, *[s for s in sampler.samples if s.phase == "connect"], idle], "connect"
    )
    if conn_window:
        result["connect"].update({"during": system_window(run, sampler, conn_window)})
    result["idle"] = {}
    idle_window = [s for s in sampler.samples if s.phase == "idle"]
    if len(idle_window) >= 2:
        result["idle"] = system_window(run, sampler, (idle_window[0], idle_window[-1]))
    result["peak"] = phase(run, sampler, "peak", args.duration, 1.0)
    if args.burst > 0 and args.burst_duration > 0:
        result["burst"] = phase(run, sampler, "burst", args.burst_duration, args.burst)
        result["drain"] = drain(run, sampler, args.drain_limit)
    if not args.no_storm:
        result["storm"] = storm(run, sampler, run.results["db_url"], args.storm_limit)
    sampler.stop()
    run.all({"cmd": "drive", "scale": 0})
    return result


def budget(args: argparse.Namespace) -> dict[str, Any]:
    """ADR 0002's bound: web processes x pool max; workers x (slots + 1); the relay's pool."""
    workers = sum(
        (1 + 1) * cap if args.worker_layout == "instances" else cap + 1
        for cap in scale_model.CAPS.values()
    )
    web = args.processes * DB_POOL_MAX_SIZE
    relay = DB_POOL_MAX_SIZE
    return {
        "formula": "ASGI processes x DB_POOL_MAX_SIZE + worker processes x (slots + 1)"
        " + relay x DB_POOL_MAX_SIZE + 1 (this sampler)",
        "web": web,
        "workers": workers,
        "relay": relay,
        "total": web + workers + relay + 1,
        "max_connections": MAX_CONNECTIONS,
        "alarm_80_percent": int(MAX_CONNECTIONS * 0.8),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument(
        "--connections", type=int, default=None, help="sockets (default: one per user)"
    )
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--burst", type=float, default=10)
    parser.add_argument("--burst-duration", type=float, default=60)
    parser.add_argument("--drain-limit", type=float, default=120)
    parser.add_argument("--storm-limit", type=float, default=120)
    parser.add_argument("--no-storm", action="store_true")
    parser.add_argument("--settle", type=float, default=32)  # > one connection refresh (30 s)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--worker-layout", choices=["instances", "processes"], default="instances")
    parser.add_argument("--workbooks", type=int, default=40)
    parser.add_argument("--import-rows", type=int, default=300)
    parser.add_argument("--smoke", action="store_true", help="200 users, 2 processes, short phases")
    parser.add_argument("--output", default="last_run")
    args = parser.parse_args()
    if args.smoke:
        args.users, args.processes, args.client_processes = 200, 2, 2
        args.duration, args.burst_duration, args.drain_limit, args.settle = 20, 20, 60, 3
        args.burst = 300.0  # enough jobs in 20 s for every kind to run a few
        args.workbooks = 4
    if args.connections is None:
        args.connections = args.users
    args.connections = min(args.connections, args.users)
    limit = raise_open_files()
    need = args.connections // max(1, args.client_processes) + 1000
    if limit < need:
        print(f"open files limit {limit} is below {need}: raise it (ulimit -Hn)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    services = Services(workdir)
    run = Run(args, services)
    started = time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]
    error = None
    try:
        result = execute(run)
    except Exception as exc:  # a failed phase: report what the earlier ones measured
        if "result" not in run.results:
            raise
        result = run.results["result"]
        error = f"{type(exc).__name__}: {exc}"
        print(f"run failed: {error}", file=sys.stderr)
    finally:
        for client in run.clients:
            with contextlib.suppress(Exception):
                client.send({"cmd": "quit"})
        for client in run.clients:
            with contextlib.suppress(Exception):
                client.process.wait(10)
            if client.process.poll() is None:
                client.process.kill()
        services.stop()
    data = {
        "meta": {
            "command": "python -m bench.scale.run " + " ".join(sys.argv[1:]),
            "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}",
            "users": args.users,
            "connections": args.connections,
            "processes": args.processes,
            "client_processes": args.client_processes,
            "sources": [f"127.0.0.{2 + i}" for i in range(args.client_processes)],
            "burst": args.burst,
            "worker_layout": args.worker_layout,
            "load_start": load_start,
            "load_end": [round(x, 2) for x in os.getloadavg()],
            "wall_s": time.monotonic() - started,
            "logs": str(workdir),
            "error": error,
        },
        "model": scale_model.as_dict(scale_model.derive(args.users)),
        "budget": budget(args),
        "result": result,
    }
    (HERE / f"{args.output}.json").write_text(json.dumps(data, indent=1, default=str))
    (HERE / f"{args.output}.md").write_text(markdown(data))
    print(f"wrote bench/scale/{args.output}.md and .json (logs in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
