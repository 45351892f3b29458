"""Video encoding benchmark, one command (``make bench-video``):

    python bench/video/run.py [--rounds 3] [--seconds 60] [--sizes 1280x720 1920x1080]

For each size, a clip of ``--seconds`` made with ffmpeg's lavfi sources (testsrc2 + sine, the
demo's sample command) goes through two paths, interleaved in rounds (the order alternates
each round, so drift on a shared machine falls on both):

- **baseline**: the worker's own ffmpeg command (``hls_encode_command`` for the probed clip,
  same ladder, preset and threads) run alone on the local file, its progress to /dev/null;
- **subject**: the worker path: ``POST /media/videos/``, a presigned PUT to moto's S3,
  ``complete-upload`` over HTTP to a uvicorn server, a ``manage.py run_worker --queue video``
  process (idle, long-polling) that downloads, probes, encodes with the same command (reading
  its progress), uploads the HLS output and finishes READY; a WebSocket client watches the
  topic.

Measured per pair: wall times and their ratio (ffmpeg inside the worker, from the process'
appearance to its exit; and the whole job, PROCESSING to READY frame), speed as a multiple of
realtime, progress accuracy (the largest gap, in points, between the percent the frames
report for the encoding step and the true fraction of ffmpeg's run elapsed at that frame),
complete-upload to the first PROCESSING frame, peak RSS (ffmpeg; worker + ffmpeg) and peak
disk (output dir; work dir), and frames published per minute.

Uses its own database (``academy_bench_video``), a Redis key prefix, its own moto server and
work directories under a temporary directory. Writes ``bench/video/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import bisect
import http.client
import json
import os
import platform
import shutil
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
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from project import devservices  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")
WORK = Path(tempfile.mkdtemp(prefix="bench-video-"))
LOGS = WORK / "logs"
CLIPS = ROOT / ".run" / "bench-video-clips"
SAMPLE_EVERY = 0.05  # s between samples of RSS, disk and the ffmpeg process
IDLE_PAUSE = 3.0  # s the worker is left idle (long-polling) before a complete-upload
USERNAME, PASSWORD = "bench-teacher", "bench1234"


def _environment() -> None:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/academy_bench_video")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.setdefault("REALTIME_KEY_PREFIX", "benchv:")
    os.environ.setdefault("DJANGO_ENV", "dev")
    os.environ["LOG_LEVEL"] = "WARNING"
    # A 1080p encode on a loaded machine can outlast the default 15 min access token, and the
    # server closes a socket whose token expired (4001): the watcher's token outlives the run.
    os.environ["ACCESS_TOKEN_LIFETIME_SECONDS"] = "14400"  # noqa: S105 - a lifetime, not a secret
    os.environ["VIDEO_WORK_ROOT"] = str(WORK / "worker")
    services = devservices.ensure_services(with_moto=True)
    os.environ.update(services.env)
    os.environ["PYTHONPATH"] = str(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"


def _spawn(args: list[str], name: str) -> subprocess.Popen[bytes]:
    log = (LOGS / f"{name}.log").open("wb")
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log, stderr=log)


# --- sampling RSS, disk and the ffmpeg process -------------------------------------------------
def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


@dataclass
class Sampler:
    """Polls a directory's size, a process tree's RSS and when an ffmpeg child runs."""

    directory: Path
    pid: int | None = None  # the worker; None samples only the directory
    peak_disk: int = 0
    peak_rss: int = 0  # the whole tree (worker + ffmpeg)
    peak_ffmpeg_rss: int = 0
    ffmpeg_first: float | None = None
    ffmpeg_last: float | None = None
    ffmpeg_cpu: list[tuple[float, float]] = field(default_factory=list)  # (t, CPU s so far)
    worker_cpu: list[tuple[float, float]] = field(default_factory=list)  # the worker's own
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        import psutil

        root = psutil.Process(self.pid) if self.pid else None
        while not self._stop.is_set():
            now = time.monotonic()
            self.peak_disk = max(self.peak_disk, _tree_size(self.directory))
            if root is not None:
                try:
                    tree = [root, *root.children(recursive=True)]
                    own = root.cpu_times()
                    self.worker_cpu.append((now, own.user + own.system))
                    rss = 0
                    for process in tree:
                        try:
                            size = process.memory_info().rss
                            rss += size
                            if process.name() == "ffmpeg":
                                self.peak_ffmpeg_rss = max(self.peak_ffmpeg_rss, size)
                                cpu = process.cpu_times()
                                self.ffmpeg_cpu.append((now, cpu.user + cpu.system))
                                self.ffmpeg_first = self.ffmpeg_first or now
                                self.ffmpeg_last = now
                        except psutil.Error:
                            continue
                    self.peak_rss = max(self.peak_rss, rss)
                except psutil.Error:
                    pass
            self._stop.wait(SAMPLE_EVERY)


# --- the two paths ------------------------------------------------------------------------------
def _probe(source: Path) -> Any:
    from domains.videos.ffmpeg import ffprobe_command
    from domains.videos.probe import parse_probe

    done = subprocess.run(ffprobe_command(source), capture_output=True, timeout=120)
    return parse_probe(done.stdout, returncode=done.returncode, stderr=done.stderr)


def baseline(source: Path) -> dict[str, float]:
    """The worker's ffmpeg command alone on the local file."""
    from django.conf import settings

    from domains.videos.ffmpeg import hls_encode_command
    from domains.videos.ladder import choose_ladder

    probe = _probe(source)
    output = WORK / "baseline"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    command = hls_encode_command(
        source,
        output,
        probe=probe,
        ladder=choose_ladder(probe.width, probe.height),
        preset=settings.VIDEO_ENCODE_PRESET,
        threads=settings.VIDEO_ENCODE_THREADS or None,
    )
    with Sampler(output) as sampler:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    if status != 0:
        raise RuntimeError(f"baseline ffmpeg exited with status {status}")
    shutil.rmtree(output, ignore_errors=True)
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss * 1024,
        "disk": sampler.peak_disk,
        "duration": probe.duration,
    }


@dataclass
class Api:
    port: int
    token: str = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, json.loads(data) if data else None


def subject(api: Api, source: Path, worker_pid: int) -> dict[str, Any]:
    """The worker path, watched over the WebSocket."""
    import requests
    from websockets.sync.client import connect
    from websockets.typing import Subprotocol

    from domains.videos.services import STEP_RANGES

    data = source.read_bytes()
    status, registered = api.call(
        "POST",
        "/media/videos/",
        {"session_id": 1, "filename": source.name, "size": len(data), "content_type": "video/mp4"},
    )
    if status != 201:
        raise RuntimeError(f"register answered {status}: {registered}")
    put = requests.put(
        registered["upload_url"], data=data, headers=registered["upload_headers"], timeout=120
    )
    put.raise_for_status()
    url = f"ws://127.0.0.1:{api.port}/ws/v1/"
    protocols = [Subprotocol("realtime.v1"), Subprotocol(f"bearer.{api.token}")]
    frames: list[tuple[float, dict[str, Any]]] = []
    with connect(url, subprotocols=protocols) as socket:
        time.sleep(IDLE_PAUSE)  # the worker is idle, in its long poll
        with Sampler(WORK / "worker", pid=worker_pid) as sampler:
            completed_at = time.monotonic()
            status, body = api.call("POST", registered["complete_url"])
            if status != 202:
                raise RuntimeError(f"complete-upload answered {status}: {body}")
            socket.send(json.dumps({"type": "subscribe", "topic": registered["topic"]}))
            while True:
                frame = json.loads(socket.recv(timeout=900))
                if frame.get("type") == "error":
                    raise RuntimeError(f"WebSocket error frame: {frame}")
                if frame.get("type") != "state" or frame.get("topic") != registered["topic"]:
                    continue
                frames.append((time.monotonic(), frame))
                if frame["status"] in ("READY", "FAILED", "CANCELLED"):
                    break
    if frames[-1][1]["status"] != "READY":
        raise RuntimeError(f"the video ended {frames[-1][1]['status']}: {frames[-1][1]}")
    if sampler.ffmpeg_first is None or sampler.ffmpeg_last is None:
        raise RuntimeError("ffmpeg was never seen running under the worker")

    processing = next(t for t, f in frames if f["status"] == "PROCESSING")
    ready = frames[-1][0]
    # ffmpeg's run as sampled: it appeared within one sample before first seen, and exited
    # within one after last seen; the midpoints are the estimate.
    start = sampler.ffmpeg_first - SAMPLE_EVERY / 2
    end = sampler.ffmpeg_last + SAMPLE_EVERY / 2
    low, high = STEP_RANGES["encoding"]
    gaps, cpu_gaps, eta_errors = [], [], []
    cpu_times = [t for t, _cpu in sampler.ffmpeg_cpu]
    cpu_total = sampler.ffmpeg_cpu[-1][1]

    def cpu_fraction(t: float) -> float:
        """The share of ffmpeg's CPU time used by ``t`` (linear between two samples)."""
        index = bisect.bisect_left(cpu_times, t)
        if index == 0:
            return 0.0
        if index >= len(cpu_times):
            return 1.0
        (t0, c0), (t1, c1) = sampler.ffmpeg_cpu[index - 1], sampler.ffmpeg_cpu[index]
        return (c0 + (c1 - c0) * (t - t0) / (t1 - t0)) / cpu_total

    for t, frame in frames:
        progress = frame.get("progress") or {}
        if progress.get("step") != "encoding" or progress.get("percent") is None:
            continue
        if not start <= t <= end:
            continue
        reported = (progress["percent"] - low) / (high - low) * 100
        true = (t - start) / (end - start) * 100
        gaps.append(abs(reported - true))
        cpu_gaps.append(abs(reported - 100 * cpu_fraction(t)))
        if progress.get("remaining_seconds") is not None:
            eta_errors.append(abs(progress["remaining_seconds"] - (end - t)))
    job_minutes = (ready - processing) / 60
    # CPU time does not stretch when other load shares the cores, as wall time does.
    ffmpeg_cpu = sampler.ffmpeg_cpu[-1][1]
    worker_during = [c for t, c in sampler.worker_cpu if start <= t <= end]
    worker_cpu = worker_during[-1] - worker_during[0] if len(worker_during) > 1 else 0.0
    encode_frames = sum(1 for t, f in frames if (f.get("progress") or {}).get("step") == "encoding")
    return {
        "ffmpeg_wall": end - start,
        "job_wall": ready - processing,
        "ffmpeg_cpu": ffmpeg_cpu,
        "worker_cpu": worker_cpu,
        "first_processing": processing - completed_at,
        "progress_gap": max(gaps) if gaps else float("nan"),
        "progress_gap_cpu": max(cpu_gaps) if cpu_gaps else float("nan"),
        "progress_points": len(gaps),
        "eta_error": max(eta_errors) if eta_errors else float("nan"),
        "frames": len(frames),
        "frames_per_minute": len(frames) / job_minutes,
        "encode_frames_per_minute": encode_frames / ((end - start) / 60),
        "rss_tree": sampler.peak_rss,
        "rss_ffmpeg": sampler.peak_ffmpeg_rss,
        "disk": sampler.peak_disk,
    }


# --- the run --------------------------------------------------------------------------------
def make_clip(size: str, seconds: float) -> Path:
    from project.demo_video import sample_command

    CLIPS.mkdir(parents=True, exist_ok=True)
    clip = CLIPS / f"lecture-{size}-{seconds:g}s.mp4"
    if not clip.exists():
        partial = clip.with_suffix(".part.mp4")
        command = sample_command(partial, size=size, seconds=seconds, preset="veryfast")
        subprocess.run(command, check=True, timeout=1800)
        partial.replace(clip)
    return clip


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _span(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"


def _mib(value: float) -> str:
    return f"{value / 1024**2:.0f} MiB"


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--sizes", nargs="+", default=["1280x720", "1920x1080"])
    args = parser.parse_args()
    LOGS.mkdir(parents=True)
    signal.signal(signal.SIGTERM, _interrupted)  # stop the worker and server on the way out
    _environment()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from domains.tenants import repository
    from project.devrun import asgi_server_command
    from realtime.identity import Role

    call_command("migrate", "--noinput", verbosity=0)
    call_command("create_queues", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    tenant = repository.tenant_upsert(code="bench", name="Bench Academy")
    repository.member_upsert(tenant.id, username=USERNAME, password=PASSWORD, role=Role.TEACHER)

    clips = {size: make_clip(size, args.seconds) for size in args.sizes}
    port = devservices.free_port()
    os.environ["REALTIME_ALLOWED_ORIGINS"] = f"http://127.0.0.1:{port}"
    server = _spawn(asgi_server_command("127.0.0.1", port)[1:], "server")
    worker = _spawn(["manage.py", "run_worker", "--queue", "video"], "worker")
    print(f"work and logs in {WORK}", flush=True)
    pairs: dict[str, list[tuple[dict[str, float], dict[str, Any]]]] = {s: [] for s in clips}
    try:
        deadline = time.monotonic() + 60
        while not devservices.port_open("127.0.0.1", port):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the server did not start; see {LOGS}")
            time.sleep(0.2)
        api = Api(port)
        login = {"tenant": "bench", "username": USERNAME, "password": PASSWORD}
        status, tokens = api.call("POST", "/api/v1/auth/token/", login)
        if status != 200:
            raise RuntimeError(f"login answered {status}: {tokens}")
        api.token = tokens["access"]
        # A warm-up job: the worker's first job pays its imports and connections.
        subject(api, make_clip(args.sizes[0], 4), worker.pid)
        for round_index in range(args.rounds):
            for size, clip in clips.items():
                order = ("baseline", "subject") if round_index % 2 == 0 else ("subject", "baseline")
                result: dict[str, Any] = {}
                for name in order:
                    print(f"round {round_index + 1} {size} {name} ...", flush=True)
                    result[name] = (
                        baseline(clip) if name == "baseline" else subject(api, clip, worker.pid)
                    )
                base, subj = result["baseline"], result["subject"]
                pairs[size].append((base, subj))
                print(
                    f"  ffmpeg alone {base['wall']:.1f} s, "
                    f"in the worker {subj['ffmpeg_wall']:.1f} s "
                    f"({subj['ffmpeg_wall'] / base['wall']:.3f}x), CPU "
                    f"{(subj['ffmpeg_cpu'] + subj['worker_cpu']) / base['cpu']:.3f}x, "
                    f"job {subj['job_wall']:.1f} s, "
                    f"gap {subj['progress_gap']:.1f} pts "
                    f"(CPU {subj['progress_gap_cpu']:.1f}), first PROCESSING "
                    f"{subj['first_processing'] * 1000:.0f} ms",
                    flush=True,
                )
            # Written after every round: a run cut short still leaves its complete pairs.
            write_results(args, pairs, settings.VIDEO_ENCODE_PRESET, settings.VIDEO_ENCODE_THREADS)
    finally:
        devservices.stop_process(worker, timeout=60)
        devservices.stop_process(server, timeout=20)
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


def write_results(
    args: argparse.Namespace,
    pairs: dict[str, list[tuple[dict[str, float], dict[str, Any]]]],
    preset: str,
    threads: int,
) -> None:
    machine = (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    done = min(len(p) for p in pairs.values())
    pairs = {size: p[:done] for size, p in pairs.items()}
    ffmpeg_version = subprocess.run(
        ["ffmpeg", "-version"], capture_output=True, text=True, check=True
    ).stdout.split(" Copyright", 1)[0]
    lines = [
        "# Video encoding benchmark",
        "",
        f"`make bench-video` on {datetime.now(UTC):%Y-%m-%d} ({machine}; {ffmpeg_version}).",
        f"{done} of {args.rounds} rounds per size; each round runs the baseline and the "
        "subject back to back, in alternating order. Clips: "
        f"{args.seconds:g} s of lavfi testsrc2 + sine at 25 fps, H.264/AAC. x264 preset "
        f"`{preset}`, threads {threads or 'ffmpeg default'}; the ladder is the worker's "
        "(no upscaling: 720p → 720p + 360p, 1080p → 1080p + 720p + 360p).",
        "",
        "| figure | " + " | ".join(pairs) + " |",
        "| --- | " + " | ".join("---" for _ in pairs) + " |",
    ]

    def row(label: str, cell: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(p) for p in pairs.values()) + " |")

    def ratios(p: list[Any], key: str) -> list[float]:
        return [s[key] / b["wall"] for b, s in p]

    row(
        "ffmpeg alone (baseline), wall s, median (range)",
        lambda p: (
            f"{_median([b['wall'] for b, _ in p]):.1f} "
            f"({_span([b['wall'] for b, _ in p], '{:.1f}')})"
        ),
    )
    row(
        "ffmpeg inside the worker, wall s, median (range)",
        lambda p: (
            f"{_median([s['ffmpeg_wall'] for _, s in p]):.1f} "
            f"({_span([s['ffmpeg_wall'] for _, s in p], '{:.1f}')})"
        ),
    )
    row(
        "**worker's ffmpeg / ffmpeg alone**, paired ratio, median (range) — target ≤ 1.05",
        lambda p: (
            f"**{_median(ratios(p, 'ffmpeg_wall')):.3f}** "
            f"({_span(ratios(p, 'ffmpeg_wall'), '{:.3f}')})"
        ),
    )

    def cpu_ratios(p: list[Any], worker: bool) -> list[float]:
        return [(s["ffmpeg_cpu"] + (s["worker_cpu"] if worker else 0)) / b["cpu"] for b, s in p]

    row(
        "CPU s: ffmpeg alone / ffmpeg in the worker / the worker process meanwhile, median",
        lambda p: (
            f"{_median([b['cpu'] for b, _ in p]):.1f} / "
            f"{_median([s['ffmpeg_cpu'] for _, s in p]):.1f} / "
            f"{_median([s['worker_cpu'] for _, s in p]):.1f}"
        ),
    )
    row(
        "**CPU, (worker's ffmpeg + worker process) / ffmpeg alone**, paired ratio, median "
        "(range) — load-independent",
        lambda p: (
            f"**{_median(cpu_ratios(p, True)):.3f}** ({_span(cpu_ratios(p, True), '{:.3f}')})"
        ),
    )
    row(
        "whole job (PROCESSING → READY frame) / ffmpeg alone, paired ratio, median (range)",
        lambda p: (
            f"{_median(ratios(p, 'job_wall')):.3f} ({_span(ratios(p, 'job_wall'), '{:.3f}')})"
        ),
    )
    row(
        "encode speed, x realtime (clip length / ffmpeg wall): alone / in the worker",
        lambda p: (
            f"{_median([b['duration'] / b['wall'] for b, _ in p]):.2f} / "
            f"{_median([b['duration'] / s['ffmpeg_wall'] for b, s in p]):.2f}"
        ),
    )
    row(
        "**progress accuracy**: largest gap, reported percent vs true fraction of encode time, "
        "points (worst round) — target ≤ 10",
        lambda p: (
            f"**{max(s['progress_gap'] for _, s in p):.1f}** "
            f"(median round {_median([s['progress_gap'] for _, s in p]):.1f}; "
            f"{_median([s['progress_points'] for _, s in p]):.0f} frames)"
        ),
    )
    row(
        "same, against the true fraction of ffmpeg's CPU time (load-independent), points",
        lambda p: (
            f"{max(s['progress_gap_cpu'] for _, s in p):.1f} "
            f"(median round {_median([s['progress_gap_cpu'] for _, s in p]):.1f})"
        ),
    )
    row(
        "time left: largest error, s (worst round)",
        lambda p: f"{max(s['eta_error'] for _, s in p):.1f}",
    )
    row(
        "**complete-upload → first PROCESSING frame**, worker idle, ms, median (max) — target "
        "< 2,000",
        lambda p: (
            f"**{_median([s['first_processing'] * 1000 for _, s in p]):.0f}** "
            f"({max(s['first_processing'] * 1000 for _, s in p):.0f})"
        ),
    )
    row(
        "peak RSS: ffmpeg alone / ffmpeg in the worker / worker + ffmpeg",
        lambda p: (
            f"{_mib(max(b['rss'] for b, _ in p))} / "
            f"{_mib(max(s['rss_ffmpeg'] for _, s in p))} / {_mib(max(s['rss_tree'] for _, s in p))}"
        ),
    )
    row(
        "peak disk: baseline output dir / worker's work dir (source + output)",
        lambda p: f"{_mib(max(b['disk'] for b, _ in p))} / {_mib(max(s['disk'] for _, s in p))}",
    )
    row(
        "state frames per minute of job (whole job / while encoding), median",
        lambda p: (
            f"{_median([s['frames_per_minute'] for _, s in p]):.0f} / "
            f"{_median([s['encode_frames_per_minute'] for _, s in p]):.0f}"
        ),
    )
    lines += [
        "",
        f"Load average when the run ended: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
        "(other engineers share the machine: compare the paired ratios, not the absolutes).",
        "",
        "How each figure is taken:",
        "",
        "- *ffmpeg inside the worker*: a sampler polls the worker's process tree every "
        f"{SAMPLE_EVERY * 1000:.0f} ms; the ffmpeg child's life is from its first to its last "
        "sample (± half a sample at each end). The baseline is the same argv (built by "
        "`hls_encode_command` from the same probe), run by the benchmark with its progress "
        "output sent to /dev/null; its peak RSS and CPU time are the kernel's (`wait4`). "
        "In the worker, ffmpeg's CPU time is its last sample (at most one sample short) and "
        "the worker process' own CPU time is counted over the same window (reading the "
        "progress pipe, publishing, heartbeats).",
        "- *progress accuracy*: every `state` frame of the encoding step received while ffmpeg "
        "ran; its percent is mapped back from the step's share of the bar "
        "(`STEP_RANGES['encoding']`, 2-90 %) to 0-100 % and compared with the fraction of "
        "ffmpeg's wall time elapsed when the frame arrived. On a machine whose other load "
        "comes and goes, the encode's speed changes during the run, and a percent of the "
        "content encoded cannot follow a fraction of wall time; the second row compares with "
        "the fraction of ffmpeg's own CPU time used (sampled), which such load does not bend.",
        "- *complete-upload → first PROCESSING frame*: from sending the HTTP request to the "
        "WebSocket frame, with the worker idle for "
        f"{IDLE_PAUSE:g} s before (in its SQS long poll on moto's server).",
        "- *frames*: every `state` frame the WebSocket client received for the topic (the "
        "runner's throttle coalesces progress to at most one publish per "
        "`REALTIME_PROGRESS_INTERVAL`).",
        "",
    ]
    RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
