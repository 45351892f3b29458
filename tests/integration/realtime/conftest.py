from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from realtime import store
from realtime.clients import sync_redis
from realtime.keys import Topic
from tests.support.realtime import GroupListener
from tests.support.tls import TlsProxy, self_signed


@pytest.fixture
def topic() -> Topic:
    return Topic.job(uuid.uuid4())


@pytest.fixture
def r() -> redis.Redis:
    return sync_redis()


@pytest.fixture
def listen(r: redis.Redis) -> Iterator[Any]:
    listeners: list[GroupListener] = []

    def _listen(tenant_id: int, topic: Topic) -> GroupListener:
        listener = GroupListener(r, store.keyspace().group_channel(tenant_id, topic))
        listeners.append(listener)
        return listener

    yield _listen
    for listener in listeners:
        listener.pubsub.close()


@pytest.fixture
def certificate() -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate (and its key) for 127.0.0.1, which is also its own CA."""
    with tempfile.TemporaryDirectory() as directory:
        yield self_signed(Path(directory))


@pytest.fixture
async def tls_proxy(settings: Any, certificate: tuple[Path, Path]) -> AsyncIterator[TlsProxy]:
    """TLS on a loopback port in front of the test Redis: ``rediss://`` as production has it."""
    port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = TlsProxy(*certificate, port)
    await proxy.start()
    yield proxy
    await proxy.stop()
