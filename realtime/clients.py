"""Process-wide Redis clients, configured deliberately for redis-py 8.

redis-py 8 defaults to a 5 s socket timeout and a pool of 100 connections that *raises* when
exhausted. Command clients here keep an explicit timeout and use a blocking pool of
``REDIS_MAX_CONNECTIONS`` that waits for a free connection instead of failing a burst.
Pub/sub connections (the channel layer's subscriber) are configured in settings with no
socket timeout, because they block between messages.

The sync client is one per process (workers, sync views, management commands): never a new
connection per call. The asyncio client is one per event loop, since its connections are
bound to the loop that opened them.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import redis
import redis.asyncio as aredis
from django.conf import settings
from django.core.signals import setting_changed

from realtime.multiplex import Multiplexer, supports

_sync_lock = threading.Lock()
_sync_client: redis.Redis | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def _pool_kwargs() -> dict[str, object]:
    return {
        "max_connections": settings.REDIS_MAX_CONNECTIONS,
        "timeout": settings.REDIS_SOCKET_TIMEOUT,  # wait this long for a free pooled connection
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_CONNECT_TIMEOUT,
        "health_check_interval": settings.REDIS_HEALTH_CHECK_INTERVAL,
    }


def sync_redis() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        with _sync_lock:
            if _sync_client is None:
                pool = redis.BlockingConnectionPool.from_url(settings.REDIS_URL, **_pool_kwargs())
                _sync_client = redis.Redis(connection_pool=pool)
    return _sync_client


def async_redis() -> aredis.Redis:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        pool = aredis.BlockingConnectionPool.from_url(settings.REDIS_URL, **_pool_kwargs())
        client = aredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


_multiplexers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Multiplexer] = (
    weakref.WeakKeyDictionary()
)


# The last loop asked for and its multiplexer: a process serves from one loop, so most calls
# look up nothing and read no setting. Dropped by reset_clients() and when a setting changes.
_last: tuple[asyncio.AbstractEventLoop, Multiplexer | None] | None = None


def async_multiplexer() -> Multiplexer | None:
    """This loop's one pipelined connection (realtime/multiplex.py), or None for a URL it
    does not speak (then use :func:`async_redis`)."""
    global _last
    loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last[0] is loop:
        return last[1]
    multiplexer = _loop_multiplexer(loop)
    _last = (loop, multiplexer)
    return multiplexer


def _loop_multiplexer(loop: asyncio.AbstractEventLoop) -> Multiplexer | None:
    multiplexer = _multiplexers.get(loop)
    url = settings.REDIS_URL
    if multiplexer is None or multiplexer.url != url:
        if multiplexer is not None:
            multiplexer.close()
        if not supports(url):
            return None
        multiplexer = _multiplexers[loop] = Multiplexer(
            url,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
        )
    return multiplexer


def reset_clients() -> None:
    """Drop cached clients (tests that change REDIS_URL, forked processes)."""
    global _sync_client
    with _sync_lock:
        if _sync_client is not None:
            _sync_client.close()
        _sync_client = None
    _async_clients.clear()
    _multiplexers.clear()
    forget_multiplexer()


def forget_multiplexer(**_kwargs: object) -> None:
    """Look the multiplexer up again on the next call (``setting_changed``: REDIS_URL and the
    timeouts are read there)."""
    global _last
    _last = None


setting_changed.connect(forget_multiplexer, dispatch_uid="realtime.clients.forget_multiplexer")
