"""Terminal states expire, so a bounded Redis under ``volatile-lru`` evicts finished jobs, not
running ones, and keeps accepting writes (PROTOCOL.md §2, ADR 0012).

Each test runs a private redis-server with a small ``maxmemory`` and fills it with finished
jobs through the real store, while a few running jobs keep reporting progress as workers do.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import redis
from django.test import override_settings

from realtime import store
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.integration.realtime.private_redis import PrivateRedis, private_redis

TENANT = 7
RUNNING = 20
HEADROOM = 1_500_000  # bytes of maxmemory above the empty server's own use
# An Excel import's result with a few failed rows (~0.5 KB of JSON, like ADR 0012's sample).
RESULT = {
    "total_rows": 300,
    "created": 280,
    "updated": 15,
    "failed": 5,
    "failed_rows": [
        {"row": i, "errors": {"phone": ["전화번호 형식이 올바르지 않습니다."]}} for i in range(5)
    ],
}


@dataclass
class Fill:
    running: list[Topic]
    finished: int = 0
    refused: list[str] = field(default_factory=list)
    seqs: dict[Topic, int] = field(default_factory=dict)
    touches: int = 0


def _bounded(server: PrivateRedis) -> int:
    used = int(server.info("memory")["used_memory"])  # type: ignore[call-overload]
    limit = used + HEADROOM
    server.client.config_set("maxmemory", limit)
    return limit


def _publish(fill: Fill, topic: Topic, change: Change) -> int | None:
    try:
        result = store.publish(TENANT, topic, change)
    except (store.RealtimeUnavailable, redis.RedisError) as exc:
        fill.refused.append(type(exc).__name__)
        return None
    if not result.accepted:
        fill.refused.append(result.reason)
        return None
    return result.seq


def _start_running(fill: Fill) -> None:
    for topic in fill.running:
        _publish(fill, topic, Change(status="PENDING", attempt=0, owner_id=1, job_type="x"))
        fill.seqs[topic] = _publish(fill, topic, Change(status="PROCESSING", attempt=1)) or 0


def _touch_running(fill: Fill) -> None:
    """Every running job reports progress, as a worker's throttled reporter does."""
    fill.touches += 1
    percent = min(99.0, 1 + fill.touches * 0.1)
    for topic in fill.running:
        seq = _publish(fill, topic, Change(progress=Progress(percent=percent, step="importing")))
        if seq is not None:
            fill.seqs[topic] = seq


def _finish_one(fill: Fill) -> None:
    topic = Topic.job(uuid.uuid4())
    change = Change(status="DONE", attempt=1, owner_id=1, job_type="excel_import", result=RESULT)
    if _publish(fill, topic, change) is not None:
        fill.finished += 1


def _fill(server: PrivateRedis, *, evictions: int, limit_jobs: int = 20_000) -> Fill:
    """Finished jobs until ~85 % full, a pause of more than Redis's 1 s LRU clock, then more
    finished jobs until ``evictions`` keys were evicted (or writes are refused), with the
    running jobs reporting progress every 25 finishes."""
    fill = Fill(running=[Topic.job(uuid.uuid4()) for _ in range(RUNNING)])
    limit = _bounded(server)
    _start_running(fill)
    while int(server.info("memory")["used_memory"]) < limit * 0.85 and not fill.refused:  # type: ignore[call-overload]
        for _ in range(50):
            _finish_one(fill)
    time.sleep(1.2)  # an older generation of finished jobs, as in production
    _touch_running(fill)
    written = 0
    while not fill.refused and written < limit_jobs:
        if int(server.info("stats")["evicted_keys"]) >= evictions:  # type: ignore[call-overload]
            break
        for _ in range(25):
            _finish_one(fill)
            written += 1
        _touch_running(fill)
    return fill


def _running_states(server: PrivateRedis, fill: Fill) -> dict[Topic, tuple[str, int] | None]:
    states: dict[Topic, tuple[str, int] | None] = {}
    for topic in fill.running:
        snap = store.snapshot(TENANT, topic)
        states[topic] = (snap.status, snap.seq) if snap is not None else None
    return states


def test_a_full_redis_evicts_finished_jobs_and_keeps_running_ones_and_accepting_writes() -> None:
    # given a private Redis bounded at its own use + 1.5 MB, volatile-lru, and the default
    # terminal TTL (24 h), with 20 running jobs
    with private_redis("--maxmemory-policy", "volatile-lru") as server:
        # when it is filled with finished jobs until 300 keys have been evicted
        fill = _fill(server, evictions=300)

        # then every write succeeded, Redis did evict, it evicted finished jobs, and every running
        # job still holds its latest state
        stats = server.info("stats")
        assert fill.refused == []
        assert int(stats["evicted_keys"]) >= 300  # type: ignore[call-overload]
        finished_left = len(list(server.client.scan_iter("tenant:*:status", count=1000))) - RUNNING
        assert finished_left < fill.finished
        assert _running_states(server, fill) == {
            topic: ("PROCESSING", fill.seqs[topic]) for topic in fill.running
        }
        assert server.client.ttl(next(server.client.scan_iter("tenant:*:status"))) > 0


@override_settings(REALTIME_TERMINAL_TTL=0)
def test_without_a_terminal_ttl_the_same_fill_loses_running_jobs_or_refuses_writes() -> None:
    # given the same bounded Redis, but terminal hashes kept forever (no TTL: not evictable)
    with private_redis("--maxmemory-policy", "volatile-lru") as server:
        # when it is filled the same way
        fill = _fill(server, evictions=300)

        # then the running jobs paid for it: their states were evicted or writes were refused
        states = _running_states(server, fill)
        lost = [
            topic for topic, state in states.items() if state != ("PROCESSING", fill.seqs[topic])
        ]
        assert lost or fill.refused
