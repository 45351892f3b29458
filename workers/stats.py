"""A worker's counters: logged at shutdown, read by tests and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorkerStats:
    received: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    released: int = 0
    lost: int = 0
    timed_out: int = 0
    duplicates: int = 0
    heartbeats: int = 0
    peak_running: int = 0
    dead_letters_deleted: int = 0
