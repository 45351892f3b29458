"""Many ASGI processes on one host behind Debian's nginx (``least_conn``), on one Redis.

Real processes throughout: three uvicorn servers started as production starts them
(project/scale.py), nginx with the shipped configuration in front, a real worker, the test
database, moto's SQS and a private Redis (its counters are this scenario's alone). Clients
reconnect as the browser client does (tests/support/scale.py). Each scenario prints one
``SCALE-RESULT`` line with its figures (docs/RELIABILITY.md, docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from project import devservices, scale
from tests.support.members import Member
from tests.support.metrics import parse, scrape, value
from tests.support.scale import (
    Clients,
    RedisServer,
    connections_by_pid,
    established_to,
    post_job,
    wait_for,
)

pytestmark = pytest.mark.slow
ORIGIN = "http://127.0.0.1"
PROCESSES = 3


def _report(scenario: str, **figures: object) -> None:
    print("SCALE-RESULT " + json.dumps({"scenario": scenario, **figures}))  # noqa: T201


def _per_server(tier: scale.WebTier) -> list[int]:
    """Proxied connections nginx holds to each server (kernel count, this namespace)."""
    return [established_to(upstream.port) for upstream in tier.upstreams]


def test_a_jobs_states_reach_clients_on_every_process_exactly_once_and_in_order(
    alpha_staff: Member,
    web_tier: Callable[..., scale.WebTier],
    workers: Callable[..., object],
    metrics_exporter: Callable[[int], object],
    clients_pool: Clients,
) -> None:
    # given three servers behind nginx and twelve clients watching one job through nginx
    tier = web_tier(scale.local_upstreams(PROCESSES))
    token = alpha_staff.access_token()
    job = post_job(tier.server_url(PROCESSES - 1), token, recipients=12, origin=ORIGIN)
    topic = f"job:{job['job_id']}"
    watchers = [clients_pool.open(tier.ws_url, token, ORIGIN, topic) for _ in range(12)]
    spread = _per_server(tier)
    assert all(count >= 1 for count in spread), spread  # least_conn: every process has some

    # when a worker runs the job (PROCESSING, one progress per recipient, DONE)
    workers()
    wait_for(lambda: all(w.status == "DONE" for w in watchers), timeout=90)

    # then every client got every state once, in order: seq 1 (the snapshot) to the last
    final = watchers[0].held
    for watcher in watchers:
        assert watcher.in_order_once()
        assert watcher.positions == [(final[0], seq) for seq in range(1, final[1] + 1)]
        assert watcher.connects == 1
    assert final[1] >= 6  # PENDING, PROCESSING, progress steps (throttled), DONE

    # and the host's metrics (one scrape, every process) counted what was sent (tallies reach
    # the files within a second)
    def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return parse(scrape(f"{tier.server_url(1)}/metrics"))

    sent = 12 * final[1]
    wait_for(lambda: value(scraped(), "academy_ws_frames_sent_total") >= sent, timeout=10)
    samples = scraped()
    assert value(samples, "academy_ws_connections") == 12
    assert value(samples, "academy_ws_subscriptions") == 12
    assert value(samples, "academy_ws_frames_sent_total") == sent
    assert value(samples, "academy_publish_deliver_lag_seconds_count") == 12 * (final[1] - 1)
    assert value(samples, "academy_worker_jobs_total", kind="messaging", outcome="done") == 1
    # and a host without a server shows the same through `manage.py serve_metrics`
    port = devservices.free_port()
    metrics_exporter(port)
    wait_for(lambda: devservices.port_open("127.0.0.1", port), timeout=30)
    exported = parse(scrape(f"http://127.0.0.1:{port}/metrics"))
    assert value(exported, "academy_worker_jobs_total", kind="messaging", outcome="done") == 1
    assert value(exported, "academy_ws_frames_sent_total") == sent
    _report(
        "states on every process",
        processes=PROCESSES,
        clients=12,
        per_process=spread,
        states=final[1],
        duplicates=0,
        out_of_order=0,
    )


def test_clients_of_a_killed_process_reconnect_through_nginx_and_lose_no_terminal_state(
    alpha_staff: Member,
    web_tier: Callable[..., scale.WebTier],
    workers: Callable[..., object],
    clients_pool: Clients,
) -> None:
    # given three servers, 18 clients of one running job spread over them by nginx
    tier = web_tier(scale.local_upstreams(PROCESSES))
    token = alpha_staff.access_token()
    job = post_job(tier.server_url(PROCESSES - 1), token, recipients=40, origin=ORIGIN)
    topic = f"job:{job['job_id']}"
    watchers = [clients_pool.open(tier.ws_url, token, ORIGIN, topic) for _ in range(18)]
    on_victim = _per_server(tier)[0]
    assert on_victim >= 1
    workers()
    wait_for(lambda: all(w.status == "PROCESSING" for w in watchers), timeout=60)

    # when the first server is SIGKILLed with its clients attached, mid-job
    killed_at = time.monotonic()
    tier.kill(0)
    wait_for(lambda: sum(w.connects for w in watchers) == 18 + on_victim, timeout=60)
    back_after = max(t for w in watchers for t in w.reconnected_at) - killed_at
    wait_for(lambda: all(w.status == "DONE" for w in watchers), timeout=120)

    # then exactly its clients reconnected, each at its first attempt (nginx sent it to a live
    # server), and every client saw DONE, never a state twice or out of order
    reconnected = [w for w in watchers if w.connects > 1]
    assert len(reconnected) == on_victim
    assert all(w.reconnect_attempts == [1] for w in reconnected)
    assert all(w.in_order_once() for w in watchers)
    assert {w.held for w in watchers} == {watchers[0].held}
    assert _per_server(tier)[0] == 0
    # and the survivors' metrics forget the dead process's connections
    samples = parse(scrape(f"{tier.server_url(1)}/metrics"))
    assert value(samples, "academy_ws_connections") == 18
    _report(
        "kill one of three processes",
        processes=PROCESSES,
        clients=18,
        on_killed=on_victim,
        reconnect_attempts=1,
        seconds_until_all_back=round(back_after, 2),
        lost_terminal=0,
        duplicates=0,
    )


# A worker's threads that use Redis with one slot: the job thread and the supervisor's Redis
# thread (workers/supervisor.py); its pool opens a second connection only when both talk at once.
WORKER_REDIS_THREADS = 2


def test_redis_connections_per_process_stay_fixed_through_1000_worker_publishes(
    alpha_staff: Member,
    redis_server: RedisServer,
    web_tier: Callable[..., scale.WebTier],
    workers: Callable[..., object],
    clients_pool: Clients,
) -> None:
    # given three servers with clients on a job, a worker publishing every progress step, and
    # Redis's connection counters once everything has connected
    tier = web_tier(scale.local_upstreams(PROCESSES))
    token = alpha_staff.access_token()
    job = post_job(tier.server_url(PROCESSES - 1), token, recipients=2000, origin=ORIGIN)
    topic = f"job:{job['job_id']}"
    watchers = [clients_pool.open(tier.ws_url, token, ORIGIN, topic) for _ in range(6)]
    worker = workers(MESSAGING_SEND_INTERVAL="0", REALTIME_PROGRESS_INTERVAL="0")
    wait_for(lambda: all(w.held[1] >= 10 for w in watchers), timeout=90)
    info = redis_server.client()
    before = info.info("stats")["total_connections_received"]
    pids = [pid for pid in tier.pids() if pid is not None] + [worker.pid]  # type: ignore[attr-defined]
    held_before = connections_by_pid(redis_server.port, pids)
    seq_before = watchers[0].held[1]

    # when the worker publishes the rest of its progress states (over 1,000) and DONE
    wait_for(lambda: all(w.status == "DONE" for w in watchers), timeout=300)
    publishes = watchers[0].held[1] - seq_before

    # then no publish opened a connection: each server holds what it held before, and the
    # worker at most one per thread that talks to Redis (its job thread, and its supervisor's
    # Redis thread when both talk at once), which is all Redis accepted meanwhile
    after = info.info("stats")["total_connections_received"]
    held_after = connections_by_pid(redis_server.port, pids)
    detail = (pids, held_before, held_after)
    assert publishes >= 1000
    assert [held_after[pid] for pid in pids[:-1]] == [held_before[pid] for pid in pids[:-1]], detail
    assert held_after[worker.pid] <= WORKER_REDIS_THREADS, detail  # type: ignore[attr-defined]
    assert after - before == held_after[worker.pid] - held_before[worker.pid], detail  # type: ignore[attr-defined]
    servers = [held_after[pid] for pid in pids[:-1]]
    # the layer's subscriber and publisher, the progress reads' pipelined connection
    # (realtime/multiplex.py) and one or two of the command pool
    assert all(1 <= count <= 5 for count in servers), held_after
    _report(
        "Redis connections under 1,000 publishes",
        processes=PROCESSES,
        publishes=publishes,
        new_connections=after - before,
        connections_per_server=servers,
        worker_connections=held_after[worker.pid],
    )  # type: ignore[attr-defined]
