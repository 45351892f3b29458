"""The fault proxy itself, each mode against a real (private) Redis, on open and new
connections alike."""

from __future__ import annotations

import socket
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.faults.support import RedisServer, wait_for
from tests.support.faultproxy import FaultProxy, Mode

pytestmark = pytest.mark.faults
TIMEOUT = 0.5


def _client(proxy: FaultProxy) -> redis.Redis:
    """One connection, no retries: every command shows what the wire did to it."""
    return redis.Redis(
        host="127.0.0.1",
        port=proxy.port,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        single_connection_client=True,
        retry=Retry(NoBackoff(), 0),
    )


def _speak(sock: socket.socket) -> bytes:
    sock.sendall(b"PING\r\n")
    return sock.recv(64)


def _connect_and_speak(proxy: FaultProxy) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as sock:
        return _speak(sock)


def _raw(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    sock.sendall(b"PING\r\n")
    assert sock.recv(64) == b"+PONG\r\n"
    return sock


def test_pass_forwards_both_ways(private_redis: RedisServer, redis_proxy: FaultProxy) -> None:
    # given a client talking to Redis through the proxy
    client = _client(redis_proxy)

    # when it writes and reads a value
    client.set("greeting", "hello")

    # then Redis holds it and the answer came back through the proxy
    assert private_redis.client().get("greeting") == b"hello"
    assert client.get("greeting") == b"hello"
    assert redis_proxy.stats.forwarded_bytes > 0


def test_delay_holds_every_reply_back_on_open_and_new_connections(
    redis_proxy: FaultProxy,
) -> None:
    # given a connection opened before the fault
    opened = _client(redis_proxy)
    assert opened.ping()

    # when every chunk is delayed by 150 ms (each way)
    redis_proxy.delay(150)
    started = time.monotonic()
    assert opened.ping()
    on_open = time.monotonic() - started
    fresh = _client(redis_proxy)
    started = time.monotonic()
    assert fresh.ping()
    on_new = time.monotonic() - started

    # then both round trips took at least the two delays, and still answered correctly
    assert on_open >= 0.3
    assert on_new >= 0.3
    redis_proxy.pass_()
    assert fresh.get("missing") is None


def test_drop_closes_open_connections_and_every_new_one(redis_proxy: FaultProxy) -> None:
    # given an open connection
    raw = _raw(redis_proxy)
    client = _client(redis_proxy)
    assert client.ping()

    # when the proxy drops
    redis_proxy.drop()

    # then the open connection got a clean close (FIN: an empty read), commands fail,
    assert raw.recv(64) == b""
    with pytest.raises(redis.ConnectionError):
        client.ping()
    # and a new connection is accepted and closed at once
    with pytest.raises(redis.ConnectionError):
        _client(redis_proxy).ping()
    assert redis_proxy.stats.dropped >= 1
    # and passing again serves new connections
    redis_proxy.pass_()
    assert _client(redis_proxy).ping()


def test_reset_sends_rst_on_open_and_new_connections(redis_proxy: FaultProxy) -> None:
    # given an open connection
    raw = _raw(redis_proxy)

    # when the proxy resets
    redis_proxy.reset()

    # then the open connection was reset, not closed
    with pytest.raises(ConnectionResetError):
        raw.recv(64)
    # and a new one is reset as soon as it speaks (or already while connecting: the RST of
    # the proxy's accept can beat the connect's return)
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        _connect_and_speak(redis_proxy)
    with pytest.raises(redis.ConnectionError):
        _client(redis_proxy).ping()
    redis_proxy.pass_()
    assert _client(redis_proxy).ping()


def test_blackhole_accepts_and_swallows_until_the_peer_times_out(
    private_redis: RedisServer, redis_proxy: FaultProxy
) -> None:
    # given a connection opened before the fault
    opened = _client(redis_proxy)
    assert opened.ping()

    # when the proxy blackholes
    redis_proxy.blackhole()

    # then the open connection's command never reaches Redis and times out,
    with pytest.raises(redis.TimeoutError):
        opened.set("lost", "1")
    # a new connection is accepted (connect succeeds) but never answered,
    fresh = socket.create_connection(("127.0.0.1", redis_proxy.port), timeout=TIMEOUT)
    fresh.sendall(b"PING\r\n")
    with pytest.raises(TimeoutError):
        fresh.recv(64)
    assert private_redis.client().get("lost") is None
    assert redis_proxy.stats.blackholed_bytes > 0
    # and once the hole closes, the swallowed connections are reset and new ones work
    redis_proxy.pass_()
    wait_for(lambda: redis_proxy.connections == 0, timeout=5)
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        _speak(fresh)
    assert _client(redis_proxy).ping()


def test_fault_block_restores_pass_even_when_the_block_fails(redis_proxy: FaultProxy) -> None:
    # given a proxy in pass mode
    assert redis_proxy.mode is Mode.PASS

    seen: list[Mode] = []

    def failing_step() -> None:
        with redis_proxy.fault(Mode.DROP):
            seen.append(redis_proxy.mode)
            raise RuntimeError("the test failed inside the fault")

    # when a block under a fault raises
    with pytest.raises(RuntimeError):
        failing_step()

    # then the fault was on inside, and the proxy passes again
    assert seen == [Mode.DROP]
    assert redis_proxy.mode is Mode.PASS
    assert _client(redis_proxy).ping()


def test_an_unreachable_upstream_looks_like_a_refused_connection(
    private_redis: RedisServer, redis_proxy: FaultProxy
) -> None:
    # given the upstream is gone
    private_redis.stop()

    # when a client connects through the proxy
    # then it fails as a connection error, not a hang
    with pytest.raises(redis.ConnectionError):
        _client(redis_proxy).ping()
