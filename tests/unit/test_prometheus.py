"""The metrics plumbing (realtime/prometheus.py): tallies flush to what direct calls would have
written, dead processes' live gauges are forgotten, labels stay bounded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from realtime import prometheus
from realtime.metrics import close_code_label

BUCKETS = (0.01, 0.1, 1.0, 10.0)
VALUES = (0.0, 0.005, 0.01, 0.0100001, 0.5, 1.0, 3.0, 10.0, 11.0, 1e9)


def test_a_flushed_tally_histogram_exposes_exactly_what_observe_would_have() -> None:
    # given two identical histograms in two registries, one fed directly, one through a tally
    direct_registry, tallied_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=direct_registry)
    tallied = Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=tallied_registry)
    tally = prometheus.TallyHistogram(tallied, tuple(tallied._upper_bounds))

    # when the same values are observed, including the bucket bounds themselves and +Inf ones
    for value in VALUES:
        direct.observe(value)
        tally.observe(value)
    before_flush = generate_latest(tallied_registry)
    tally.flush()

    # then nothing showed before the flush, and the flushed exposition is line-identical
    # (but for the creation timestamps)
    assert b"lag_seconds_count 0.0" in before_flush
    assert _samples(tallied_registry) == _samples(direct_registry)
    assert b"lag_seconds_count 10.0" in generate_latest(tallied_registry)


def _samples(registry: CollectorRegistry) -> list[bytes]:
    lines = generate_latest(registry).splitlines()
    return [line for line in lines if not line.startswith(b"lag_seconds_created")]


def test_a_tally_counter_adds_its_pending_count_once() -> None:
    # given a counter behind a tally
    registry = CollectorRegistry()
    counter = Counter("frames", "frames", registry=registry)
    tally = prometheus.TallyCounter(counter)

    # when it counts 3, is flushed twice, then counts 2 and is flushed
    for _ in range(3):
        tally.inc()
    tally.flush()
    tally.flush()
    tally.inc(2)
    tally.flush()

    # then the counter holds 5
    assert registry.get_sample_value("frames_total") == 5


def test_close_codes_have_a_bounded_set_of_labels() -> None:
    # given the codes a connection may end with, known, unknown and absent
    codes = [1000, 1001, 1006, 4001, 4003, 4008, 4999, 3000, 1, True, "4001", None]

    # when they are labelled
    labels = [close_code_label(code) for code in codes]

    # then known codes keep their number and anything else collapses into two labels
    assert labels[:6] == ["1000", "1001", "1006", "4001", "4003", "4008"]
    assert labels[6:11] == ["other"] * 5
    assert labels[11] == "none"


CHILD = """
from prometheus_client import Counter, Gauge
Gauge("open_things", "open", multiprocess_mode="livesum").inc(3)
Counter("done_things", "done").inc(2)
"""


def test_a_dead_process_live_gauges_are_dropped_and_its_counters_kept(tmp_path: Path) -> None:
    # given two processes that wrote a live gauge and a counter into one directory and exited
    env = {**os.environ, prometheus.MULTIPROC_ENV: str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", CHILD], env=env, check=True)
    assert len(list(tmp_path.glob("gauge_livesum_*.db"))) == 2

    # when the directory's dead processes are reaped
    reaped = prometheus.reap_dead_processes(tmp_path)

    # then both are gone from the gauge, and their counts still add up
    assert len(reaped) == 2
    assert list(tmp_path.glob("gauge_livesum_*.db")) == []
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
