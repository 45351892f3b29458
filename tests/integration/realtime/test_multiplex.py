"""realtime.multiplex against real Redis: many commands on one connection, redis-py's errors."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from realtime import clients, store
from realtime.keys import Topic
from realtime.multiplex import Multiplexer
from realtime.resp import pack
from realtime.state import Change, Progress
from tests.support.tls import TlsProxy
from tests.support.tokens import ALPHA


def _multiplexer(url: str | None = None, *, timeout: float = 2.0) -> Multiplexer:
    return Multiplexer(url or settings.REDIS_URL, socket_timeout=timeout, connect_timeout=1.0)


async def test_concurrent_commands_share_one_connection_and_get_their_own_replies() -> None:
    # given 200 keys with distinct values
    multiplexer = _multiplexer()
    names = [f"test-multiplex:{uuid.uuid4()}" for _ in range(200)]
    await asyncio.gather(*(multiplexer.execute(pack("SET", n, n[-8:], "EX", 60)) for n in names))
    client_ids = set()

    # when they are all read at once, with CLIENT ID between them
    replies = await asyncio.gather(
        *(multiplexer.execute(pack("GET", n)) for n in names),
        *(multiplexer.execute(pack("CLIENT", "ID")) for _ in range(5)),
    )
    client_ids.update(replies[200:])
    multiplexer.close()

    # then each read got its own value, in order, over a single connection
    assert replies[:200] == [n[-8:].encode() for n in names]
    assert len(client_ids) == 1


async def test_an_error_reply_is_a_response_error_and_the_connection_goes_on() -> None:
    # given a key holding a string
    multiplexer = _multiplexer()
    name = f"test-multiplex:{uuid.uuid4()}"
    await multiplexer.execute(pack("SET", name, "x", "EX", 60))

    # when a command fails on it, then another runs
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        await multiplexer.execute(pack("HGET", name, "field"))
    after = await multiplexer.execute(pack("GET", name))
    multiplexer.close()

    # then the failure was redis-py's error and the next reply was still the right one
    assert after == b"x"


async def test_a_refused_connection_is_a_connection_error() -> None:
    # given nothing listening on a port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # when/then a command is a ConnectionError
    with pytest.raises(redis.ConnectionError):
        await _multiplexer(f"redis://127.0.0.1:{port}/0").execute(pack("PING"))


async def test_a_server_that_never_answers_is_a_timeout_and_the_connection_is_dropped() -> None:
    # given a server that accepts connections and never answers
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    multiplexer = _multiplexer(f"redis://127.0.0.1:{port}/0", timeout=0.3)

    # when two commands are sent
    started = asyncio.get_running_loop().time()
    results = await asyncio.gather(
        multiplexer.execute(pack("PING")), multiplexer.execute(pack("PING")), return_exceptions=True
    )
    waited = asyncio.get_running_loop().time() - started
    server.close()

    # then both are TimeoutErrors after about the socket timeout
    assert all(isinstance(r, redis.TimeoutError) for r in results), results
    assert 0.25 < waited < 2.0


async def test_the_progress_read_is_the_same_snapshot_as_redis_py_gives() -> None:
    # given a running job in Redis
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    clients.reset_clients()

    # when it is read over the multiplexer (with and without the frame) and by redis-py
    with_frame = await store.asnapshot(ALPHA, topic)
    document_only = await store.asnapshot(ALPHA, topic, frame=False)
    reference = await asyncio.to_thread(store.snapshot, ALPHA, topic)

    # then the documents are the same; only the frame is left out when asked
    assert with_frame == reference
    assert document_only is not None
    assert reference is not None
    assert document_only.document == reference.document
    assert (document_only.seq, document_only.owner_id, document_only.frame) == (
        reference.seq,
        reference.owner_id,
        "",
    )


async def _job_of_owner_7(*, terminal: bool) -> Topic:
    """A job of owner 7 that ran with progress (and then finished with a result)."""
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    await store.apublish(
        ALPHA, topic, Change(status="PROCESSING", attempt=1, progress=Progress(percent=42))
    )
    if terminal:
        await store.apublish(ALPHA, topic, Change(status="DONE", attempt=1, result='{"n": 3}'))
    return topic


@pytest.mark.parametrize("terminal", [False, True])
async def test_the_stored_document_is_the_one_the_script_builds(terminal: bool) -> None:
    # given a job that ran with progress (and then finished with a result)
    topic = await _job_of_owner_7(terminal=terminal)

    # when the progress read (HMGET of the stored document) and the script's read are compared
    stored = await store.asnapshot(ALPHA, topic, frame=False)
    built = await asyncio.to_thread(store.snapshot, ALPHA, topic)

    # then they are the same document
    assert stored is not None
    assert built is not None
    assert stored.document == built.document
    assert json.loads(stored.document)["status"] == ("DONE" if terminal else "PROCESSING")


async def test_a_hash_without_a_stored_document_is_read_by_the_script() -> None:
    # given a running job whose status hash has no stored document (written before there was one)
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    await asyncio.to_thread(
        clients.sync_redis().hdel, store.keyspace().status_key(ALPHA, topic), "doc"
    )

    # when the progress read runs
    snap = await store.asnapshot(ALPHA, topic, frame=False)

    # then the script built the document
    assert snap is not None
    assert json.loads(snap.document)["status"] == "PENDING"
    assert snap.owner_id == 7


@pytest.mark.parametrize("terminal", [False, True])
async def test_the_progress_read_is_the_stored_document_as_bytes(terminal: bool) -> None:
    # given a job of owner 7, running or done
    topic = await _job_of_owner_7(terminal=terminal)

    # when the progress endpoints' read runs, and the script builds the document
    read = await store.aprogress(ALPHA, topic)
    built = await asyncio.to_thread(store.snapshot, ALPHA, topic)

    # then the bytes are the script's document, with the status and owner the checks read
    assert read is not None
    assert built is not None
    assert read.document == built.document.encode()
    assert read.status == (b"DONE" if terminal else b"PROCESSING")
    assert read.owner_id == 7


async def test_the_progress_read_of_an_old_hash_or_no_hash() -> None:
    # given a job whose status hash has no stored document, and a topic never published
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    await asyncio.to_thread(
        clients.sync_redis().hdel, store.keyspace().status_key(ALPHA, topic), "doc"
    )

    # when the progress read runs on both
    old = await store.aprogress(ALPHA, topic)
    missing = await store.aprogress(ALPHA, Topic.job(uuid.uuid4()))

    # then the script built the old one's document, and the unknown topic is None
    assert old is not None
    assert json.loads(old.document)["status"] == "PENDING"
    assert (old.status, old.owner_id) == (b"PENDING", 7)
    assert missing is None


async def test_submit_hands_out_the_connections_own_future_once_connected() -> None:
    # given a multiplexer that has not connected yet
    multiplexer = _multiplexer()
    name = f"test-multiplex:{uuid.uuid4()}"

    # when a command is submitted before the connection exists, and one after
    first = multiplexer.submit(pack("SET", name, "v", "EX", 60))
    first_reply = await first
    second = multiplexer.submit(pack("GET", name))
    second_reply = await second
    multiplexer.close()

    # then the first went through a task that connected, the second is the reply's future
    assert isinstance(first, asyncio.Task)
    assert first_reply == b"OK"
    assert isinstance(second, asyncio.Future)
    assert not isinstance(second, asyncio.Task)
    assert second_reply == b"v"


async def test_the_progress_read_goes_over_rediss_as_production_has_it(
    settings: Any, certificate: tuple[Path, Path], tls_proxy: TlsProxy
) -> None:
    # given a running job, and REDIS_URL as rediss:// to a TLS proxy trusting its certificate
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    plain = await store.aprogress(ALPHA, topic)
    db = settings.REDIS_URL.rsplit("/", 1)[1]
    settings.REDIS_URL = f"rediss://127.0.0.1:{tls_proxy.port}/{db}?ssl_ca_certs={certificate[0]}"

    try:
        # when the progress endpoints' read runs
        read = await store.aprogress(ALPHA, topic)
        multiplexer = clients.async_multiplexer()
    finally:
        clients.reset_clients()

    # then it went through this loop's multiplexer, over TLS, and read the same document
    assert multiplexer is not None
    assert multiplexer.url.startswith("rediss://")
    assert tls_proxy.handshakes == 1
    assert plain is not None
    assert read == plain


async def test_rediss_with_an_untrusted_certificate_is_refused_not_downgraded(
    settings: Any, tls_proxy: TlsProxy
) -> None:
    # given a rediss:// URL to the proxy without its certificate among the trusted ones
    db = settings.REDIS_URL.rsplit("/", 1)[1]
    multiplexer = _multiplexer(f"rediss://127.0.0.1:{tls_proxy.port}/{db}")

    # when a command is sent, then the connection fails on the certificate, as redis-py's would
    with pytest.raises(redis.ConnectionError) as failure:
        await multiplexer.execute(pack("PING"))
    multiplexer.close()
    assert isinstance(failure.value.__cause__, ssl.SSLCertVerificationError)
    assert tls_proxy.handshakes == 0
