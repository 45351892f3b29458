"""The harness's private services do what the scenarios rely on: a Redis restarted with,
without or from a stale dump, and a PostgreSQL cluster restarted under its clients."""

from __future__ import annotations

import psycopg
import pytest

from tests.faults.support import PostgresCluster, RedisServer

pytestmark = pytest.mark.faults


def test_redis_restarts_with_its_dump_without_it_and_from_a_stale_copy(
    private_redis: RedisServer,
) -> None:
    # given a key saved in a stale copy, and a later write saved in the current dump
    client = private_redis.client()
    client.set("seq", 1)
    stale = private_redis.stale_copy()
    client.set("seq", 2)
    private_redis.save()

    # when Redis restarts from each
    private_redis.restart()
    kept = private_redis.client().get("seq")
    private_redis.restart(dump=stale)
    promoted = private_redis.client().get("seq")
    private_redis.restart(keep_dump=False)
    empty = private_redis.client().get("seq")

    # then it holds the latest write, the stale one (a promoted lagging replica), and nothing
    assert (kept, promoted, empty) == (b"2", b"1", None)


def test_a_private_postgres_restarts_under_its_clients(private_postgres: PostgresCluster) -> None:
    # given a connection to the private cluster
    before = psycopg.connect(private_postgres.url(), autocommit=True)
    assert before.execute("SELECT 1").fetchone() == (1,)

    # when the cluster restarts as after a crash
    private_postgres.restart(mode="immediate")

    # then the old connection is broken and a new one works
    with pytest.raises(psycopg.OperationalError):
        before.execute("SELECT 1")
    with psycopg.connect(private_postgres.url(), autocommit=True) as after:
        assert after.execute("SELECT 1").fetchone() == (1,)
