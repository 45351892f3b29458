"""What a metric costs on the hot path (ADR 0015): prometheus-client's calls against the tallies.

Per call, in nanoseconds, median of several rounds, in one run and one process with
``PROMETHEUS_MULTIPROC_DIR`` set (as the servers run): ``Counter.inc``, a labelled
``Counter.labels(...).inc``, ``Histogram.observe``, and the tallies that replace the first and
the last on the per-frame path (``TallyCounter.inc``, ``TallyHistogram.observe``), whose flush
(once a second per process) is timed too. The baseline is an attribute increment
(``x.n += 1``), the least any count can cost. Writes bench/metrics/RESULTS.md.

Run: ``make bench-metrics``.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CALLS = 20_000
ROUNDS = 7
FRAME_US = 161  # server µs per delivered frame, bench/ws/RESULTS.md (sansio, 1,000 clients)


class _Slot:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


def per_call_ns(statement: object) -> float:
    runs = timeit.repeat(statement, number=CALLS, repeat=ROUNDS)  # type: ignore[call-overload]
    return statistics.median(runs) / CALLS * 1e9


def main() -> None:
    directory = tempfile.mkdtemp(prefix="bench-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        rows = measure()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    write(rows)


def measure() -> list[tuple[str, float]]:
    from prometheus_client import Counter, Histogram

    from realtime import prometheus

    buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
    counter = Counter("bench_frames", "frames")
    labelled = Counter("bench_closes", "closes", ["code"])
    histogram = Histogram("bench_lag_seconds", "lag", buckets=buckets)
    tally = prometheus.tally_counter(Counter("bench_tallied_frames", "frames"))
    tally_hist = prometheus.tally_histogram(Histogram("bench_tallied_lag", "lag", buckets=buckets))
    slot = _Slot()

    def attribute() -> None:
        slot.n += 1

    def flush_of_a_second_of_frames() -> float:
        """ns to flush what a process at its ceiling (~5,000 frames/s) tallies in a second."""
        for _ in range(5_000):
            tally.inc()
            tally_hist.observe(0.004)
        started = time.perf_counter_ns()
        prometheus.flush()
        return float(time.perf_counter_ns() - started)

    flush_ns = statistics.median(flush_of_a_second_of_frames() for _ in range(ROUNDS))
    return [
        ("attribute increment (baseline)", per_call_ns(attribute)),
        ("Counter.inc (multiprocess)", per_call_ns(counter.inc)),
        (
            "Counter.labels('4001').inc (multiprocess)",
            per_call_ns(lambda: labelled.labels("4001").inc()),
        ),
        ("Histogram.observe (multiprocess)", per_call_ns(lambda: histogram.observe(0.004))),
        ("TallyCounter.inc", per_call_ns(tally.inc)),
        ("TallyHistogram.observe", per_call_ns(lambda: tally_hist.observe(0.004))),
        ("flush of 5,000 frames' tallies, per frame", flush_ns / 5_000),
    ]


def write(rows: list[tuple[str, float]]) -> None:
    baseline = rows[0][1]
    direct = rows[1][1] + rows[3][1]
    tallied = rows[4][1] + rows[5][1] + rows[6][1]
    lines = [
        "# Metrics on the hot path (ADR 0015)",
        "",
        f"`make bench-metrics`, {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()},"
        f" {os.cpu_count()} cores; median of {ROUNDS} rounds of {CALLS:,} calls, one process,"
        " PROMETHEUS_MULTIPROC_DIR set.",
        "",
        "| call | ns per call | x baseline |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {ns:,.0f} | {ns / baseline:.1f}x |" for name, ns in rows]
    lines += [
        "",
        f"Per delivered frame (a frame counter and a lag observation): **{direct / 1000:.1f} µs**"
        f" through prometheus-client, **{tallied / 1000:.2f} µs** through the tallies, flush"
        f" included ({direct / tallied:.0f}x less); against ~{FRAME_US} µs per frame for the whole"
        " delivery (bench/ws/RESULTS.md), that is"
        f" {direct / 10 / FRAME_US:.0f} % and {tallied / 10 / FRAME_US:.1f} % of it.",
        "",
    ]
    text = "\n".join(lines)
    (Path(__file__).parent / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
