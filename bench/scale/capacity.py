"""The capacity plan's arithmetic (docs/CAPACITY.md), from the model and measured figures.

    python -m bench.scale.capacity bench/scale/run-10000.json

prints, for 500, 3,000 and 10,000 users, the tables docs/CAPACITY.md quotes. Inputs: the
model (``bench/scale/model.py``), one scale run's JSON (memory and Redis per socket, Redis
commands and CPU, database connections seen, reconnect CPU per socket, the messaging drain),
and the figures of the other benchmarks, each named where it is used (``MEASURED``). Pure
arithmetic: nothing is started.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.scale import model

SIZES = (500, 3000, 10_000)
# Figures measured by other runs, with their source.
MEASURED = {
    # bench/ws/RESULTS.md (final-5000-gc.md, 2026-11-28): uvicorn sansio, 5,000 clients.
    "frames_per_s_per_process": 5000,
    # docs/adr/0012-terminal-states-expire-after-a-day.md: used_memory per job.
    "running_job_bytes": 563,
    "terminal_job_bytes_small": 308,
    "terminal_job_bytes_import": 1230,
    # research/video_anchors.md §2.5 (local run): 1080p ladder, veryfast, -threads 2, 2 cores.
    "encode_speed": 1.6,
}
# PostgreSQL on RDS: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000). Measured
# defaults (research/scale_infra_anchors.md §5, gist guizmaii): 2 GiB 198, 4 GiB 413,
# 8 GiB 856, 16 GiB 1,660. 1 GiB is that formula at the 2 GiB class's ratio (198/225).
RDS_CLASSES = [
    ("db.t4g.micro", 1, 99),
    ("db.t4g.small", 2, 198),
    ("db.t4g.medium", 4, 413),
    ("db.m7g.large", 8, 856),
    ("db.r7g.large", 16, 1660),
]
# Peak hour = this share of a day's jobs (the same share the model uses for uploads).
PEAK_HOUR_SHARE = 0.2
SOCKETS_PER_PROCESS = 2500  # what one process held in the scale run, and had to take back
WORKER_CONNECTIONS = 2  # one slot per instance: slots + 1 (ADR 0002)
RELAY_CONNECTIONS = 10  # the relay runs with the web pool (DB_POOL_MAX_SIZE)
ADMIN_CONNECTIONS = 3  # migrations, a shell, the health check's own
VIDEO_SLO_HOURS = 3.0  # seeds: video encoding < 3 h


def processes_for(sockets: int) -> tuple[int, int]:
    """(hosts, processes): at least two hosts of 2 vCPUs, one or two processes each, so that
    with one host lost every surviving process holds at most what one process held (and took
    back) in the scale run."""
    hosts = 2
    while True:
        for per_host in (1, 2):
            if sockets / ((hosts - 1) * per_host) <= SOCKETS_PER_PROCESS:
                return hosts, hosts * per_host
        hosts += 1


def plan(users: int, run: dict[str, Any]) -> dict[str, Any]:
    mix = model.derive(users)
    r = run["result"]
    kib = sum(m["kib_per_socket"] for m in r["connect"]["memory"]) / len(r["connect"]["memory"])
    redis_per_socket = r["connect"]["redis_bytes_per_socket"]
    run_sockets = r["connect"]["sockets"]
    peak = r["peak"]
    reconnect_cpu = r["storm"]["new_process_cpu_s_until_all_back"] / r["storm"]["sockets"]
    worst = users  # every user online with a socket
    hosts, processes = processes_for(worst)
    per_process = worst / processes
    # Redis memory: sockets, running jobs, one day of terminal states (24 h TTL).
    jobs_per_day = sum(k.arrivals_per_hour for k in mix.kinds.values()) / PEAK_HOUR_SHARE
    imports_per_day = mix.kinds["ai"].arrivals_per_hour / PEAK_HOUR_SHARE
    running = sum(min(k.busy_slots, k.cap) for k in mix.kinds.values()) + sum(
        k.backlog_growth_per_hour for k in mix.kinds.values()
    )
    memory = (
        worst * redis_per_socket
        + running * MEASURED["running_job_bytes"]
        + (jobs_per_day - imports_per_day) * MEASURED["terminal_job_bytes_small"]
        + imports_per_day * MEASURED["terminal_job_bytes_import"]
    )
    # Redis commands: the run's per-socket refresh and per-process heartbeat share scaled, plus
    # the events (each publish runs ~15 commands inside the state script).
    top = peak["redis"]["top_commands_per_s"]
    refresh_per_socket = (top.get("zadd", 0) + top.get("pexpire", 0)) / run_sockets
    heartbeat_per_process = top.get("publish", 0) / run["meta"]["processes"]
    commands = (
        worst * refresh_per_socket
        + processes * heartbeat_per_process
        + mix.events_per_second * 15
        + mix.http_per_second * 3
    )
    cpu_per_command = peak["redis"]["cpu_cores"] / max(1.0, peak["redis"]["commands_per_s"])
    web_conns = processes * 10
    workers = sum(model.CAPS.values())
    total = web_conns + workers * WORKER_CONNECTIONS + RELAY_CONNECTIONS + ADMIN_CONNECTIONS
    rds = next(c for c in RDS_CLASSES if total <= 0.8 * c[2])
    # Drain at the cap: the messaging service rate the run's drain measured.
    drain = r["drain"]
    backlog = sum(drain["visible_at_start"].values())
    mix_run = model.derive(run["meta"]["users"])
    arrivals_run = mix_run.kinds["messaging"].arrivals_per_hour / 3600
    service = backlog / drain["seconds"] + arrivals_run if drain["seconds"] else None
    msg_arrivals = mix.kinds["messaging"].arrivals_per_hour / 3600
    video = mix.kinds["video"]
    encode_s = video.seconds_per_job
    video_service_per_hour = video.cap * 3600 / encode_s
    peak_backlog = max(0.0, video.arrivals_per_hour - video_service_per_hour)
    off_peak_share = 1 - model.Assumptions().uploads_peak_hour_share
    off_peak_arrivals = mix.video_uploads_per_day * off_peak_share / 23
    video_drain_h = (
        peak_backlog / (video_service_per_hour - off_peak_arrivals)
        if peak_backlog and video_service_per_hour > off_peak_arrivals
        else (math.inf if peak_backlog else 0.0)
    )
    # The slowest encode speed (x realtime, per slot) at which the last upload of the peak hour
    # is encoded within the seeds' 3 h: its wait for the peak's backlog plus its own encode.
    lecture_s = encode_s * MEASURED["encode_speed"]

    def last_upload_hours(speed: float) -> float:
        service = video.cap * 3600 / (lecture_s / speed)
        backlog = max(0.0, video.arrivals_per_hour - service)
        if backlog and service <= off_peak_arrivals:
            return math.inf
        wait = backlog / (service - off_peak_arrivals) if backlog else 0.0
        return wait + lecture_s / speed / 3600

    speed_for_slo = next(
        x / 10 for x in range(5, 400) if last_upload_hours(x / 10) <= VIDEO_SLO_HOURS
    )
    last_upload_h = last_upload_hours(MEASURED["encode_speed"])
    return {
        "users": users,
        "sockets_model_peak": mix.sockets,
        "sockets_worst": worst,
        "hosts": hosts,
        "processes": processes,
        "sockets_per_process": per_process,
        "rss_mb_per_process": 132 + per_process * kib / 1024,
        "frames_per_s": mix.state_frames_per_second,
        "frames_share_of_capacity": mix.state_frames_per_second
        / (processes * MEASURED["frames_per_s_per_process"]),
        "host_loss_reconnect_cpu_s": worst / hosts * reconnect_cpu,
        "redis_memory_mb": memory / 2**20,
        "redis_commands_per_s": commands,
        "redis_cpu_cores": commands * cpu_per_command,
        "db_web": web_conns,
        "db_workers": workers * WORKER_CONNECTIONS,
        "db_total": total,
        "rds_class": rds,
        "msg_service_per_s": service,
        "msg_arrivals_per_s": msg_arrivals,
        "msg_drain_1000_min": 1000 / (service - msg_arrivals) / 60 if service else None,
        "video_slot_hours_needed": mix.video_slot_hours_per_day,
        "video_slot_hours_available": mix.video_slot_hours_available,
        "video_peak_backlog": peak_backlog,
        "video_drain_h": video_drain_h,
        "video_last_upload_h": last_upload_h,
        "video_speed_for_slo": speed_for_slo,
        "video_speed_for_day": MEASURED["encode_speed"]
        * mix.video_slot_hours_per_day
        / mix.video_slot_hours_available,
        "jobs_per_day": jobs_per_day,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    run = json.loads(args.run.read_text())
    plans = [plan(n, run) for n in SIZES]
    keys = list(plans[0])
    print("| | " + " | ".join(f"{p['users']:,}" for p in plans) + " |")
    print("| --- |" + " ---: |" * len(plans))
    for key in keys[1:]:
        cells = []
        for p in plans:
            v = p[key]
            if isinstance(v, tuple):
                cells.append(f"{v[0]} ({v[2]})")
            elif isinstance(v, float):
                cells.append("inf" if math.isinf(v) else f"{v:,.2f}")
            else:
                cells.append(f"{v:,}" if isinstance(v, int) else str(v))
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
