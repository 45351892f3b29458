"""Real ffmpeg for the video tests: lavfi clips, and running our probe and encode commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from domains.videos.ffmpeg import ffprobe_command, hls_encode_command
from domains.videos.ffprogress import Progress, ProgressParser
from domains.videos.ladder import Rung
from domains.videos.probe import Probe, parse_probe

# Small reads, so progress lines arrive split across reads as they can from a pipe.
READ_SIZE = 61


def require_ffmpeg() -> None:
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"{' and '.join(missing)} missing: run `make ffmpeg`")


def make_clip(
    path: Path,
    *,
    size: str,
    seconds: float = 4,
    audio: bool = True,
    rotate: int | None = None,
    faststart: bool = False,
) -> Path:
    """An H.264 (+AAC) mp4 from lavfi's testsrc2 and sine sources."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    command += ["-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    if audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        command += ["-c:a", "aac", "-shortest"]
    if faststart:
        command += ["-movflags", "+faststart"]
    if rotate is None:
        subprocess.run([*command, str(path)], check=True, timeout=60)
        return path
    # ffmpeg 5.1 writes the display matrix from a rotate tag when remuxing, not when encoding
    unrotated = path.with_name(f"unrotated-{path.name}")
    subprocess.run([*command, str(unrotated)], check=True, timeout=60)
    remux = ["ffmpeg", "-v", "error", "-y", "-i", str(unrotated), "-c", "copy"]
    remux += ["-metadata:s:v:0", f"rotate={rotate}", str(path)]
    subprocess.run(remux, check=True, timeout=60)
    return path


def make_audio(path: Path, *, seconds: float = 3) -> Path:
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=duration={seconds}"]
    subprocess.run([*command, str(path)], check=True, timeout=60)
    return path


def make_image(path: Path) -> Path:
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48"]
    subprocess.run([*command, "-frames:v", "1", str(path)], check=True, timeout=60)
    return path


def probe_file(path: Path) -> Probe:
    """Run our ffprobe command and parse it (raises the probe's typed errors)."""
    done = subprocess.run(ffprobe_command(path), capture_output=True, timeout=60)
    return parse_probe(done.stdout, returncode=done.returncode, stderr=done.stderr)


@dataclass
class Encoded:
    returncode: int
    blocks: list[Progress]
    stderr: str


def encode(source: Path, output: Path, *, probe: Probe, ladder: tuple[Rung, ...]) -> Encoded:
    """Run our ffmpeg command, feeding its stdout through the parser as it arrives."""
    output.mkdir(parents=True, exist_ok=True)
    command = hls_encode_command(source, output, probe=probe, ladder=ladder, stats_period=0.2)
    parser = ProgressParser()
    blocks: list[Progress] = []
    with (output.parent / f"{output.name}.stderr").open("w+b") as stderr:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr) as process:
            assert process.stdout is not None
            while chunk := os.read(process.stdout.fileno(), READ_SIZE):
                blocks += parser.feed(chunk)
            blocks += parser.close()
            returncode = process.wait(timeout=120)
        stderr.seek(0)
        return Encoded(returncode, blocks, stderr.read().decode(errors="replace"))
