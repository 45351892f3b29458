"""The layer's pub/sub subscriber (realtime/subscriber.py) over real Redis: resubscription after a
reset behind the fault proxy, one subscription per channel, one-member groups, TLS, AUTH, unix.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest

from realtime.clients import async_redis
from realtime.layer import RealtimeChannelLayer
from realtime.resp import Endpoint
from realtime.subscriber import SubscriberError
from tests.integration.realtime.private_redis import private_redis
from tests.support.faultproxy import FaultProxy
from tests.support.tls import TlsProxy

ALICE = ("alice", "on", ">wonder", "~*", "&*", "+@all")


def _layer(address: str, **host: Any) -> RealtimeChannelLayer:
    return RealtimeChannelLayer(
        hosts=[{"address": address, "socket_connect_timeout": 2, **host}],
        prefix=f"test-sub-{uuid.uuid4().hex[:8]}",
    )


def _redis_port(settings: Any) -> int:
    return int(settings.REDIS_URL.rsplit(":", 1)[1].split("/", 1)[0])


def _state(seq: int) -> dict[str, Any]:
    return {"type": "realtime.state", "topic": "job:x", "seq": seq, "terminal": False}


async def _eventually(check: Any, seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return bool(check())


async def _join(layer: RealtimeChannelLayer, group: str) -> tuple[str, list[int]]:
    """A direct channel with a receiver that records the seq of each state, joined to group."""
    channel = layer.new_direct_channel()
    got: list[int] = []
    layer.register_receiver(channel, lambda message: got.append(message["seq"]) is None)
    await layer.group_add(group, channel)
    return channel, got


async def _publish(layer: RealtimeChannelLayer, group: str, message: dict[str, Any]) -> None:
    """Straight to the shared Redis (not through the layer under test)."""
    group_channel = layer._get_layer()._get_group_channel_name(group)
    await async_redis().publish(group_channel, layer.serialize(message))


async def _numsub(layer: RealtimeChannelLayer, group: str) -> int:
    group_channel = layer._get_layer()._get_group_channel_name(group)
    [(_, count)] = await async_redis().pubsub_numsub(group_channel)
    return int(count)


async def test_the_subscriber_takes_its_channels_over_to_a_new_connection_after_a_reset(
    settings: Any,
) -> None:
    # given a layer behind the fault proxy with a member in each of two groups
    with FaultProxy("127.0.0.1", _redis_port(settings)) as proxy:
        layer = _layer(settings.REDIS_URL.replace(f":{_redis_port(settings)}/", f":{proxy.port}/"))
        try:
            _, got_a = await _join(layer, "a")
            _, got_b = await _join(layer, "b")
            subscriber = layer._get_layer()._shards[0].subscriber
            assert subscriber.connections == 1

            # when the proxy resets every connection, refuses new ones for a while, then passes
            proxy.reset()
            await asyncio.sleep(0.3)  # reconnect attempts are reset too
            proxy.pass_()
            reconnected = await _eventually(
                lambda: subscriber.connected and subscriber.connections >= 2
            )
            await _publish(layer, "a", _state(1))
            await _publish(layer, "b", _state(2))
            delivered = await _eventually(lambda: got_a == [1] and got_b == [2])

            # then both groups are subscribed again on the new connection, once each
            assert reconnected
            assert delivered, (got_a, got_b)
            assert (await _numsub(layer, "a"), await _numsub(layer, "b")) == (1, 1)
        finally:
            await layer.flush()


async def test_a_group_is_subscribed_once_and_a_lone_member_is_kept_as_a_one_tuple(
    settings: Any,
) -> None:
    # given a layer and two members joining one group
    layer = _layer(settings.REDIS_URL)
    loop_layer = layer._get_layer()
    group = f"g{uuid.uuid4().hex}"
    group_channel = loop_layer._get_group_channel_name(group)
    try:
        first, got_first = await _join(layer, group)
        alone = loop_layer.groups[group_channel]
        second, got_second = await _join(layer, group)
        both = set(loop_layer.groups[group_channel])
        both_kind = type(loop_layer.groups[group_channel])
        subscriptions_with_two = await _numsub(layer, group)

        # when one leaves, a state is published, then the other leaves too
        await layer.group_discard(group, first)
        left_one = loop_layer.groups[group_channel]
        await _publish(layer, group, _state(7))
        delivered = await _eventually(lambda: got_second == [7])
        await layer.group_discard(group, second)

        # then one member is a 1-tuple, two a set, one Redis subscription throughout, only the
        # remaining member got the state, and the last one out unsubscribed
        assert alone == (first,)
        assert (both, both_kind) == ({first, second}, set)
        assert subscriptions_with_two == 1
        assert left_one == (second,)
        assert delivered
        assert got_first == []
        assert group_channel not in loop_layer.groups
        assert await _eventually(lambda: group_channel not in _subscribed(layer))
        assert await _numsub(layer, group) == 0
    finally:
        await layer.flush()


def _subscribed(layer: RealtimeChannelLayer) -> dict[str, Any]:
    return layer._get_layer()._shards[0].subscriber.channels


# --- TLS: a TLS-terminating proxy with a certificate made here, in front of the real Redis ---


async def test_a_group_message_arrives_over_rediss(
    settings: Any, certificate: tuple[Path, Path], tls_proxy: TlsProxy
) -> None:
    # given a layer whose URL is rediss:// to the TLS proxy, trusting its certificate
    db = settings.REDIS_URL.rsplit("/", 1)[1]
    url = f"rediss://127.0.0.1:{tls_proxy.port}/{db}?ssl_ca_certs={certificate[0]}"
    layer = _layer(url)
    try:
        # when a member joins a group and a state is sent through the layer itself
        _, got = await _join(layer, "tls")
        await layer.group_send("tls", _state(9))
        delivered = await _eventually(lambda: got == [9])

        # then it arrived, over connections that went through the TLS handshake (subscriber
        # and publisher), and the subscriber's connection is encrypted
        subscriber = layer._get_layer()._shards[0].subscriber
        transport = subscriber._protocol.transport if subscriber._protocol else None
        assert delivered
        assert tls_proxy.handshakes >= 2
        assert transport is not None
        assert transport.get_extra_info("ssl_object") is not None
    finally:
        await layer.flush()


async def test_rediss_with_an_untrusted_certificate_is_refused_not_downgraded(
    settings: Any, tls_proxy: TlsProxy
) -> None:
    # given a rediss:// URL to the proxy without its certificate among the trusted ones
    layer = _layer(f"rediss://127.0.0.1:{tls_proxy.port}/0")
    try:
        # when a member joins, then the subscription fails on the certificate
        with pytest.raises(SubscriberError) as failure:
            await _join(layer, "untrusted")
        assert isinstance(failure.value.__cause__, ssl.SSLCertVerificationError)
        assert tls_proxy.handshakes == 0
    finally:
        await layer.flush()


def test_urls_are_read_as_redis_py_reads_them() -> None:
    # given URLs of each scheme, when read, then TLS, AUTH, db and the socket path are taken
    plain = Endpoint.from_url("redis://u:p%40ss@cache:6380/3")
    secure = Endpoint.from_url("rediss://cache:6379/0")
    lax = Endpoint.from_url("rediss://cache/0?ssl_cert_reqs=none")
    unix = Endpoint.from_url("unix:///run/redis.sock?db=4")

    assert (plain.host, plain.port, plain.username, plain.password, plain.db, plain.ssl) == (
        "cache",
        6380,
        "u",
        "p@ss",
        3,
        None,
    )
    assert secure.ssl is not None
    assert (secure.ssl.verify_mode, secure.ssl.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert lax.ssl is not None
    assert (lax.ssl.verify_mode, lax.ssl.check_hostname) == (ssl.CERT_NONE, False)
    assert (unix.path, unix.db, unix.ssl) == ("/run/redis.sock", 4, None)


async def test_auth_and_a_unix_socket(tmp_path: Path) -> None:
    # given a private Redis with an ACL user, listening on a unix socket as well
    sock = tmp_path / "redis.sock"
    with private_redis("--unixsocket", str(sock), "--user", *ALICE) as r:
        port = r.url.rsplit(":", 1)[1].split("/", 1)[0]
        authed = _layer(f"redis://alice:wonder@127.0.0.1:{port}/1")
        wrong = _layer(f"redis://alice:nope@127.0.0.1:{port}/1")
        unix = _layer(f"unix://{sock}?db=2")
        try:
            # when members join through each, and a state is published to both groups
            _, got_authed = await _join(authed, "auth")
            _, got_unix = await _join(unix, "unix")
            with pytest.raises(SubscriberError, match="redis refused"):
                await _join(wrong, "wrong")
            for layer, group in ((authed, "auth"), (unix, "unix")):
                channel = layer._get_layer()._get_group_channel_name(group)
                r.client.publish(channel, layer.serialize(_state(3)))
            delivered = await _eventually(lambda: got_authed == [3] and got_unix == [3])
            names = {entry.get("user") for entry in r.client.client_list(_type="pubsub")}

            # then both receive it, the first as alice, and a wrong password is an error
            assert delivered
            assert "alice" in names
        finally:
            for layer in (authed, wrong, unix):
                await layer.flush()
