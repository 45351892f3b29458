"""Prometheus plumbing shared by every process: exposition, dead processes, hot-path tallies.

Metrics are ``prometheus-client``'s, in its multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR``
is set in the environment before the library is imported (the ASGI processes and the workers
of one host share one directory, on tmpfs, emptied when the host boots): each process writes
its values to memory-mapped files there, and :func:`exposition` merges the files of every
process of the host. Without the variable a process exposes its own registry (development,
tests in one process). See docs/adr/0015-metrics-tallied-in-process-flushed-each-second.md.

Gauges of the ``live*`` modes (open connections, busy slots) must forget a process that died:
the library leaves that to a process manager calling ``mark_process_dead``; nothing calls it
for a SIGKILLed uvicorn, so :func:`reap_dead_processes` does it for every PID of the directory
that no longer runs, before each exposition.

Hot paths (a counter per WebSocket frame, a histogram per delivered state) do not call the
library: a multiprocess ``inc`` takes a lock and writes the mapped file, ~15 µs here, and an
``observe`` ~37 µs, against ~160 µs for the whole delivery of a frame (bench/ws). They add to a
:class:`TallyCounter` or :class:`TallyHistogram` instead (an attribute increment) and
:func:`flush` moves the totals into the library once a second (``realtime.metrics`` runs it on
each event loop) and before each exposition by the process serving it. Tallies are not
thread-safe: use them from one event loop only.

Pure plumbing: no Django.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# gauge_livesum_1234.db, gauge_livemostrecent_1234.db, ...
_LIVE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV, "")
    return Path(value) if value else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def reap_dead_processes(directory: Path) -> list[int]:
    """Drop the live-gauge files of processes that no longer run; returns their PIDs.

    The directory is one host's, so a PID is checked on the host that wrote it. Counters and
    histograms of dead processes stay: their totals still count.
    """
    dead = []
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_FILE.match(path.name)
        if match is None:
            continue
        pid = int(match[1])
        if pid != os.getpid() and not _running(pid):
            with contextlib.suppress(FileNotFoundError):  # another process reaped it first
                multiprocess.mark_process_dead(pid, str(directory))
            dead.append(pid)
    return sorted(set(dead))


def exposition() -> bytes:
    """The text exposition of this host's metrics (every process of the directory), or of
    this process's registry when not in multiprocess mode. Reads files: call it off the
    event loop, after :func:`flush` on it."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    reap_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    return generate_latest(registry)


# --- tallies: hot-path counts kept in the process, flushed into the library -----------------
_tallies: list[TallyCounter | TallyHistogram] = []


class TallyCounter:
    """A count added to a labelled ``Counter`` child at the next :func:`flush`."""

    __slots__ = ("child", "pending")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.pending = 0
        _tallies.append(self)

    def inc(self, amount: int = 1) -> None:
        self.pending += amount

    def flush(self) -> None:
        if self.pending:
            amount, self.pending = self.pending, 0
            self.child.inc(amount)


class TallyHistogram:
    """Observations added to a ``Histogram`` (child) at the next :func:`flush`, bucket by
    bucket. Writes the library's per-bucket values (``_buckets``, ``_sum``), which its
    ``observe`` writes too; ``prometheus-client`` is pinned to a minor version for that, and
    tests/unit/test_prometheus.py compares a flushed tally with ``observe`` to the byte."""

    __slots__ = ("bounds", "child", "counts", "total")

    def __init__(self, child: Any, bounds: tuple[float, ...]) -> None:
        self.child = child
        self.bounds = bounds  # the histogram's upper bounds, +Inf last
        self.counts = [0] * len(bounds)
        self.total = 0.0
        _tallies.append(self)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def flush(self) -> None:
        if not any(self.counts):
            return
        counts, total = self.counts, self.total
        self.counts, self.total = [0] * len(self.bounds), 0.0
        buckets = self.child._buckets
        for index, count in enumerate(counts):
            if count:
                buckets[index].inc(count)
        self.child._sum.inc(total)


def tally_counter(counter: Counter, *labels: str) -> TallyCounter:
    return TallyCounter(counter.labels(*labels) if labels else counter)


def tally_histogram(histogram: Histogram, *labels: str) -> TallyHistogram:
    child = histogram.labels(*labels) if labels else histogram
    return TallyHistogram(child, tuple(child._upper_bounds))


def flush() -> None:
    """Move every tally's pending counts into the library (call from the tallies' loop)."""
    for tally in _tallies:
        tally.flush()
