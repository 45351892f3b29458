"""Running ffprobe and ffmpeg as child processes: progress, a deadline, a stop, the disk. Pure.

:func:`run_encode` starts the one ffmpeg process of an encode and reads its ``-progress
pipe:1`` stdout through :class:`~domains.videos.ffprogress.ProgressParser`, calling
``on_progress`` with each block. stderr is drained by a thread into a bounded tail (an
undrained stderr pipe fills and blocks ffmpeg), kept for the error message and the logs.

Stopping: ``should_stop`` is asked every time ffmpeg reports (``-stats_period``) and at least
every :data:`POLL_SECONDS`; when it answers a reason, or the deadline passes, ffmpeg gets
SIGTERM, then SIGKILL after :data:`TERM_GRACE_SECONDS`. ffmpeg runs in its own session, so a
worker's own signals are not sent to it, and under ``setpriv --pdeathsig KILL`` when that tool
exists, so a worker killed outright (SIGKILL, OOM) takes its ffmpeg with it.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from domains.videos.ffprogress import Progress, ProgressParser
from domains.videos.ladder import Rung

POLL_SECONDS = 0.5
TERM_GRACE_SECONDS = 5.0
STDERR_TAIL_LINES = 50
PROBE_TIMEOUT_SECONDS = 120.0
# Outputs are estimated from the ladder's bit rates, plus this share for container overhead.
OUTPUT_OVERHEAD = 1.15


@dataclass(frozen=True, slots=True)
class EncodeRun:
    returncode: int
    stopped: str | None
    """Why we stopped ffmpeg (``"time limit"``, a ``should_stop`` reason), ``None`` otherwise."""
    stderr_tail: str
    ended: bool
    """ffmpeg wrote its final progress block (``progress=end``)."""


def _guarded(command: Sequence[str]) -> list[str]:
    """``command`` under ``setpriv --pdeathsig KILL`` when available (util-linux, Linux)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(command)
    return [setpriv, "--pdeathsig", "KILL", "--", *command]


def _drain(stream: object, tail: deque[str]) -> None:
    read = getattr(stream, "readline")  # noqa: B009 - a binary pipe
    for raw in iter(read, b""):
        tail.append(raw.decode("utf-8", errors="replace").rstrip())


def stop_process(process: subprocess.Popen[bytes], *, grace: float = TERM_GRACE_SECONDS) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_encode(
    command: Sequence[str],
    *,
    on_progress: Callable[[Progress], None],
    should_stop: Callable[[], str | None],
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    term_grace: float = TERM_GRACE_SECONDS,
) -> EncodeRun:
    """Run ffmpeg to the end, or until ``should_stop`` names a reason or ``deadline`` passes.

    ``deadline`` is on ``clock``'s timeline. An exception from ``on_progress`` or
    ``should_stop`` stops ffmpeg the same way and is raised once it has exited.
    """
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    parser = ProgressParser()
    stopped: str | None = None
    process = subprocess.Popen(  # noqa: S603 - argv from ffmpeg.hls_encode_command
        _guarded(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    if process.stdout is None or process.stderr is None:
        raise RuntimeError("ffmpeg's pipes were not opened")
    drainer = threading.Thread(
        target=_drain, args=(process.stderr, tail), name="ffmpeg-stderr", daemon=True
    )
    drainer.start()
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    try:
        while True:
            stopped = "time limit" if clock() >= deadline else should_stop()
            if stopped is not None:
                stop_process(process, grace=term_grace)
                break
            if not selector.select(timeout=POLL_SECONDS):
                continue
            chunk = os.read(process.stdout.fileno(), 65_536)
            if not chunk:
                for block in parser.close():
                    on_progress(block)
                break
            for block in parser.feed(chunk):
                on_progress(block)
        returncode = process.wait()
    except BaseException:
        stop_process(process, grace=term_grace)
        raise
    finally:
        selector.close()
        process.stdout.close()
        drainer.join(timeout=5)
        process.stderr.close()
    return EncodeRun(
        returncode=returncode, stopped=stopped, stderr_tail="\n".join(tail), ended=parser.ended
    )


@dataclass(frozen=True, slots=True)
class ProbeRun:
    returncode: int
    stdout: bytes
    stderr: bytes


def run_probe(command: Sequence[str], *, timeout: float = PROBE_TIMEOUT_SECONDS) -> ProbeRun:
    """Run ffprobe; a probe that hangs past ``timeout`` counts as unreadable (exit -9)."""
    try:
        done = subprocess.run(  # noqa: S603 - argv from ffmpeg.ffprobe_command
            _guarded(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        return ProbeRun(-9, b"", (exc.stderr or b"") + b"\nffprobe timed out")
    return ProbeRun(done.returncode, done.stdout, done.stderr)


# --- the disk -----------------------------------------------------------------------------------
def output_bytes_estimate(ladder: Sequence[Rung], duration: float) -> int:
    """Bytes the ladder's HLS output takes for ``duration`` seconds, at its target bit rates."""
    kbps = sum(rung.video_kbps + rung.audio_kbps for rung in ladder)
    return int(kbps * 1000 / 8 * duration * OUTPUT_OVERHEAD)


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


class DiskTooFull(Exception):
    """The work directory's disk cannot hold what the job needs."""

    def __init__(self, *, needed: int, free: int) -> None:
        super().__init__(f"needs {needed:,} bytes of disk, {free:,} are free")
        self.needed = needed
        self.free = free


def disk_check(path: Path, *, needed: int) -> None:
    """Raise :class:`DiskTooFull` unless ``needed`` more bytes fit under ``path``."""
    free = free_bytes(path)
    if free < needed:
        raise DiskTooFull(needed=needed, free=free)
