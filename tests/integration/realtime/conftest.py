from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from realtime import store
from realtime.clients import sync_redis
from realtime.keys import Topic
from tests.support.realtime import GroupListener


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
