"""An incremental parser of ffmpeg's ``-progress pipe:1`` output, and what it means in time left.

ffmpeg (with ``-progress pipe:1 -nostats``) writes blocks of ``key=value`` lines to stdout,
one block every ``-stats_period`` seconds and one at the end; the last key of every block is
``progress``, ``continue`` while running and ``end`` on the final report::

    frame=100
    fps=48.21
    stream_0_0_q=28.0
    bitrate=N/A
    total_size=N/A
    out_time_us=4017044
    out_time_ms=4017044
    out_time=00:00:04.017044
    dup_frames=0
    drop_frames=0
    speed=1.93x
    progress=end

What the parser copes with, all seen in real output:

- values are ``N/A`` while unknown (``bitrate`` and ``total_size`` stay N/A for the whole HLS
  run; ``speed`` and the ``out_time`` keys are N/A in the first block): they parse to ``None``;
- ``speed`` and ``bitrate`` are printed space-padded (``speed=  1.5x``,
  ``bitrate= 181.7kbits/s``);
- ``out_time_ms`` counts **microseconds**, not milliseconds: fftools prints it from the same
  value as ``out_time_us`` (trac ticket #7345, kept for compatibility). So the media time is
  read from ``out_time_us``, else from ``out_time`` (``HH:MM:SS.ffffff``), and only as a last
  resort from ``out_time_ms`` read as microseconds;
- old builds print a sentinel for an unknown time (``out_time_ms=-9223372036854775807``,
  ``out_time=-577014:32:22``), and the first block can be slightly negative: a negative time
  parses to ``None``;
- a short job writes a single block, already ``progress=end``;
- reads from a pipe split lines anywhere: a partial line waits for the rest;
- after SIGTERM ffmpeg may stop mid-block without ``progress=end``: an unfinished block is
  never reported.

Use :class:`ProgressParser` with bytes as they arrive (``feed``, then ``close`` at EOF), or
:func:`iter_progress` over a line iterator such as ``Popen.stdout``. Turn each
:class:`Progress` into percent and remaining seconds with :class:`ProgressEstimator`.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# Percent stays below 100 while encoding: 100 means the video is READY, which needs the
# exit code and the output's validation, not just ffmpeg's last report.
RUNNING_CEILING = 99.9

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_CLOCK = re.compile(r"(-?)(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class Progress:
    """One finished block of ffmpeg's progress report. ``None`` is "not known (yet)"."""

    out_time_s: float | None
    """Media time written so far, in seconds: the encode's position on the source timeline."""
    speed: float | None
    """Encoding speed as a multiple of realtime (media seconds per wall second, averaged)."""
    frame: int | None
    fps: float | None
    bitrate_kbps: float | None
    total_size: int | None
    dup_frames: int | None
    drop_frames: int | None
    ended: bool
    """True for the final block (``progress=end``)."""
    fields: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Every key of the block as written (stripped), for logs and keys not modelled here."""


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    match = _NUMBER.search(value)
    return float(match.group()) if match else None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _clock_seconds(value: str | None) -> float | None:
    match = _CLOCK.fullmatch(value or "")
    if match is None:
        return None
    sign, hours, minutes, seconds = match.groups()
    total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return -total if sign else total


def _out_time(values: Mapping[str, str]) -> float | None:
    """The media time in seconds, from the most trustworthy key present (see module doc)."""
    microseconds = _integer(values.get("out_time_us"))
    seconds = microseconds / 1_000_000 if microseconds is not None else None
    if seconds is None:
        seconds = _clock_seconds(values.get("out_time"))
    if seconds is None:
        # Named milliseconds, counts microseconds (trac #7345).
        microseconds = _integer(values.get("out_time_ms"))
        seconds = microseconds / 1_000_000 if microseconds is not None else None
    if seconds is None or seconds < 0:
        return None
    return seconds


def progress_from_fields(values: Mapping[str, str]) -> Progress:
    """Build a :class:`Progress` from one block's ``key -> value`` (values already stripped)."""
    speed = _number(values.get("speed"))
    return Progress(
        out_time_s=_out_time(values),
        speed=speed if speed is not None and speed > 0 else None,
        frame=_integer(values.get("frame")),
        fps=_number(values.get("fps")),
        bitrate_kbps=_number(values.get("bitrate")),
        total_size=_integer(values.get("total_size")),
        dup_frames=_integer(values.get("dup_frames")),
        drop_frames=_integer(values.get("drop_frames")),
        ended=values.get("progress") == "end",
        fields=dict(values),
    )


class ProgressParser:
    """Feed it ffmpeg's stdout as it arrives; it returns each block once that block is complete.

    ``feed`` accepts bytes or text in chunks of any size (a chunk may end mid-line); ``close``
    handles a last line without its newline and drops a block that never got its ``progress``
    line (ffmpeg was stopped). ``ended`` is true once a ``progress=end`` block was seen.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._block: dict[str, str] = {}
        self.ended = False

    def feed(self, data: bytes | str) -> list[Progress]:
        if isinstance(data, str):
            data = data.encode()
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [block for line in lines if (block := self._line(line)) is not None]

    def close(self) -> list[Progress]:
        """End of stream: parse a trailing unterminated line; forget an unfinished block."""
        rest, self._buffer = self._buffer, b""
        block = self._line(rest) if rest.strip() else None
        self._block = {}
        return [block] if block is not None else []

    def _line(self, raw: bytes) -> Progress | None:
        line = raw.decode("utf-8", errors="replace").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            return None  # blank or foreign line: nothing ffmpeg's progress format writes
        key, value = key.strip(), value.strip()
        self._block[key] = value
        if key != "progress":
            return None
        block, self._block = self._block, {}
        progress = progress_from_fields(block)
        self.ended = self.ended or progress.ended
        return progress


def iter_progress(chunks: Iterable[bytes | str]) -> Iterator[Progress]:
    """Every complete block in ``chunks`` (lines or arbitrary pieces), e.g. ``Popen.stdout``."""
    parser = ProgressParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()


@dataclass(frozen=True, slots=True)
class Estimate:
    """Where the encode is: ``percent`` of the source encoded, and wall seconds left.

    Both are ``None`` when they cannot be known: no duration (then the worker shows the step
    without a percent), or no speed yet (no remaining time).
    """

    percent: float | None
    remaining_seconds: float | None


def estimate(
    progress: Progress, duration: float | None, *, ceiling: float = RUNNING_CEILING
) -> Estimate:
    """Percent and remaining seconds for one block, given the probed duration in seconds.

    ``percent = 100 * out_time / duration``, clamped to ``[0, ceiling]`` (the last frame's time
    can pass the container's duration, and 100 is kept for READY); the final block
    (``progress=end``) is ``ceiling`` with 0 s left. ``remaining = (duration - out_time) /
    speed``, as ffmpeg's speed is media seconds per wall second; at least 0.
    """
    if duration is None or duration <= 0:
        return Estimate(percent=None, remaining_seconds=None)
    if progress.ended:
        return Estimate(percent=ceiling, remaining_seconds=0.0)
    if progress.out_time_s is None:
        return Estimate(percent=None, remaining_seconds=None)
    done = min(progress.out_time_s, duration)
    percent = min(ceiling, max(0.0, 100.0 * done / duration))
    remaining = (duration - done) / progress.speed if progress.speed else None
    return Estimate(percent=percent, remaining_seconds=remaining)


# Wall seconds of recent blocks that the remaining time is computed from (see ProgressEstimator).
RATE_WINDOW = 10.0
# Below this much wall time between the window's ends, ffmpeg's own speed is used instead.
RATE_WINDOW_MIN = 2.0


class ProgressEstimator:
    """:func:`estimate` over a run's blocks, with a percent that never goes backwards and a
    remaining time from the recent rate.

    A block without a usable time (N/A, negative) repeats the last known percent, so a
    publisher can call ``update`` on every block. ffmpeg's ``speed`` is the average since the
    start: after a slow start (a cold cache, a busy machine) it lags for the rest of the run,
    so a long encode that sped up keeps showing the slow start's time left. Once the blocks
    span ``RATE_WINDOW_MIN`` wall seconds, the time left is
    ``(duration - out_time) / recent rate``, the rate being media seconds per wall second
    over the last ``window`` seconds (the clock is injectable for tests). The remaining time
    is not forced down: an honest estimate may grow when the encode slows.
    """

    def __init__(
        self,
        duration: float | None,
        *,
        ceiling: float = RUNNING_CEILING,
        window: float = RATE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.duration = duration
        self.ceiling = ceiling
        self.window = window
        self.clock = clock
        self.percent: float | None = None
        self._samples: deque[tuple[float, float]] = deque()  # (wall time, media time)

    def update(self, progress: Progress) -> Estimate:
        current = estimate(progress, self.duration, ceiling=self.ceiling)
        remaining = current.remaining_seconds
        if not progress.ended and progress.out_time_s is not None and self.duration:
            remaining = self._recent_remaining(
                self.duration, progress.out_time_s, fallback=remaining
            )
        if current.percent is None:
            return Estimate(percent=self.percent, remaining_seconds=remaining)
        percent = current.percent
        if self.percent is not None and percent < self.percent:
            percent = self.percent
        self.percent = percent
        return Estimate(percent=percent, remaining_seconds=remaining)

    def _recent_remaining(
        self, duration: float, media: float, *, fallback: float | None
    ) -> float | None:
        now = self.clock()
        samples = self._samples
        samples.append((now, media))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        first_wall, first_media = samples[0]
        wall = now - first_wall
        if wall < RATE_WINDOW_MIN:
            return fallback
        rate = (media - first_media) / wall
        if rate <= 0:
            return fallback
        return max(0.0, (duration - min(media, duration)) / rate)
