"""Many hosts on one machine: network namespaces as hosts, on one Redis.

Three namespaces (``ac77h1``..``ac77h3``, 10.77.0.11-13 on a bridge at 10.77.0.1) each run an
ASGI server; the worker runs in a fourth (``ac77w``); Redis, PostgreSQL, moto and nginx stay in
the root namespace. Redis, PostgreSQL and moto listen on 127.0.0.1, so the root namespace
forwards 10.77.0.1 ports to them: PostgreSQL and moto through a passing fault proxy, Redis
through a router that hands each host's connections to a fault proxy of its own
(tests/support/scale.py), so one host can be cut off from Redis while every host's settings
stay identical. Every server gets the same argv and the same environment, whatever the count
of hosts: the first scenario runs with one host and with three.

Needs root (``ip netns``); when namespaces cannot be made the module is skipped with the
exact error. Every namespace and the bridge are removed at teardown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from project import devservices, scale
from tests.support.members import Member
from tests.support.metrics import parse, scrape, value
from tests.support.scale import (
    Clients,
    FaultProxy,
    Mode,
    Namespaces,
    RedisServer,
    SourceRouter,
    database_url,
    moto_port,
    netns_unavailable,
    post_job,
    wait_for,
)

REASON = netns_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=str(REASON))]
ORIGIN = "http://127.0.0.1"
SERVER_PORT = 8001  # the same on every host, as the production unit's instances


@dataclass
class Hosts:
    namespaces: Namespaces
    proxies: dict[str, FaultProxy]  # Redis, one per namespace
    env: dict[str, str]

    def address(self, name: str) -> str:
        return self.namespaces.addresses[name]


@pytest.fixture
def hosts_factory(
    base_env: dict[str, str], redis_server: RedisServer
) -> Iterator[Callable[[int], Hosts]]:
    made: list[tuple[Namespaces, list[FaultProxy], SourceRouter | None]] = []

    def _make(count: int) -> Hosts:
        names = [f"h{i}" for i in range(1, count + 1)] + ["w"]
        namespaces = Namespaces(names)
        proxies: list[FaultProxy] = []
        made.append((namespaces, proxies, None))
        namespaces.create()
        gateway = namespaces.gateway
        # PostgreSQL and moto: one passing proxy each, reachable from every namespace.
        pg = FaultProxy("127.0.0.1", 5432, listen_host=gateway).start()
        moto = FaultProxy("127.0.0.1", moto_port(), listen_host=gateway).start()
        proxies += [pg, moto]
        # Redis: one fault proxy per namespace, behind one address for all.
        per_host = {name: FaultProxy("127.0.0.1", redis_server.port).start() for name in names}
        proxies += per_host.values()
        router = SourceRouter(
            (gateway, devservices.free_port()),
            {namespaces.addresses[name]: proxy.port for name, proxy in per_host.items()},
            default=redis_server.port,
        ).start()
        made[-1] = (namespaces, proxies, router)
        env = {
            **base_env,
            "DATABASE_URL": database_url(gateway, pg.port),
            "REDIS_URL": f"redis://{gateway}:{router.port}/0",
            "AWS_ENDPOINT_URL": f"http://{gateway}:{moto.port}",
            "METRICS_ALLOWED_NETWORKS": f"{namespaces.subnet}.0/24",
            "REDIS_SOCKET_TIMEOUT": "2",
            "REDIS_CONNECT_TIMEOUT": "2",
            "REDIS_HEALTH_CHECK_INTERVAL": "2",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR")  # a host's processes share their own disk only
        return Hosts(namespaces=namespaces, proxies=per_host, env=env)

    yield _make
    for namespaces, proxies, router in made:
        if router is not None:
            router.stop()
        for proxy in proxies:
            proxy.stop()
        namespaces.remove()
        assert namespaces.existing() == []


def _upstreams(hosts: Hosts, count: int) -> list[scale.Upstream]:
    return [
        scale.Upstream(hosts.address(f"h{i}"), SERVER_PORT, hosts.namespaces.launcher(f"h{i}"))
        for i in range(1, count + 1)
    ]


def _report(scenario: str, **figures: object) -> None:
    print("SCALE-RESULT " + json.dumps({"scenario": scenario, **figures}))  # noqa: T201


@pytest.mark.parametrize("count", [1, 3])
def test_states_reach_clients_on_every_host_exactly_once_with_the_same_settings(
    count: int,
    alpha_staff: Member,
    hosts_factory: Callable[[int], Hosts],
    web_tier: Callable[..., scale.WebTier],
    workers: Callable[..., object],
    clients_pool: Clients,
) -> None:
    # given `count` hosts, each one server with the same argv and environment, behind nginx
    hosts = hosts_factory(count)
    tier = web_tier(_upstreams(hosts, count), env=hosts.env)
    token = alpha_staff.access_token()
    job = post_job(tier.url, token, recipients=8, origin=ORIGIN)
    topic = f"job:{job['job_id']}"
    watchers = [clients_pool.open(tier.ws_url, token, ORIGIN, topic) for _ in range(3 * count)]
    assert all(w.positions for w in watchers)

    # when a worker on its own host runs the job
    workers(*hosts.namespaces.launcher("w"), env=hosts.env)
    wait_for(lambda: all(w.status == "DONE" for w in watchers), timeout=120)

    # then every client, on every host, got every state once and in order
    final = watchers[0].held
    for watcher in watchers:
        assert watcher.positions == [(final[0], seq) for seq in range(1, final[1] + 1)]
    connected = [
        value(parse(scrape(f"{tier.server_url(i)}/metrics")), "academy_ws_connections")
        for i in range(count)
    ]
    assert all(n >= 1 for n in connected), connected  # every host served some clients
    assert sum(connected) == 3 * count
    _report(
        f"{count} host(s)",
        hosts=count,
        clients=3 * count,
        per_host=connected,
        states=final[1],
        duplicates=0,
    )


def test_a_host_cut_off_from_redis_resynchronises_its_clients_when_it_heals(
    alpha_staff: Member,
    hosts_factory: Callable[[int], Hosts],
    web_tier: Callable[..., scale.WebTier],
    workers: Callable[..., object],
    clients_pool: Clients,
) -> None:
    # given three hosts with four clients each (connected to the host directly) on a running job
    hosts = hosts_factory(3)
    tier = web_tier(_upstreams(hosts, 3), env=hosts.env)
    token = alpha_staff.access_token()
    job = post_job(tier.url, token, recipients=40, origin=ORIGIN)
    topic = f"job:{job['job_id']}"
    by_host = {
        f"h{i}": [
            clients_pool.open(
                f"ws://{hosts.address(f'h{i}')}:{SERVER_PORT}/ws/v1/", token, ORIGIN, topic
            )
            for _ in range(4)
        ]
        for i in range(1, 4)
    }
    workers(*hosts.namespaces.launcher("w"), env=hosts.env)
    wait_for(
        lambda: all(w.status == "PROCESSING" for ws in by_host.values() for w in ws), timeout=60
    )

    # when h1 is cut off from Redis (its packets vanish) until the job has finished on the
    # other hosts, then heals
    cut_started = time.monotonic()
    hosts.proxies["h1"].set_mode(Mode.BLACKHOLE)
    cut_at = max(w.held[1] for w in by_host["h2"])
    others = by_host["h2"] + by_host["h3"]
    wait_for(lambda: all(w.status == "DONE" for w in others), timeout=120)
    stalled = max(w.held[1] for w in by_host["h1"])
    hosts.proxies["h1"].pass_()
    healed_at = time.monotonic()
    wait_for(lambda: all(w.status == "DONE" for w in by_host["h1"]), timeout=60)
    converged = time.monotonic() - healed_at

    # then h1's clients stood still during the cut, and once it healed the resync brought
    # them the terminal state (published while they were cut off), in order, without a
    # reconnect: the layer lost messages and the resync sweep repaired them
    everyone = [w for ws in by_host.values() for w in ws]
    assert stalled <= cut_at + 2  # what was in flight when the cut began
    assert {w.held for w in everyone} == {everyone[0].held}
    assert all(w.in_order_once() for w in everyone)
    assert all(w.connects == 1 for w in everyone)
    h1 = parse(scrape(f"{tier.server_url(0)}/metrics"))
    gaps = value(h1, "academy_layer_gaps_total")
    repaired = value(h1, "academy_resync_repairs_total", cause="behind")
    # each cut-off client got DONE from the sweep (the periodic one, or one the watchdog
    # started early when it saw a gap in its beats: which one comes first is a matter of timing)
    assert repaired >= len(by_host["h1"])
    cut_for = healed_at - cut_started
    _report(
        "one of three hosts cut off from Redis until the job ended elsewhere",
        hosts=3,
        clients=12,
        lost_terminal=0,
        seconds_cut=round(cut_for, 2),
        seconds_to_converge_after_heal=round(converged, 2),
        layer_gaps=gaps,
        resync_repairs=repaired,
    )
