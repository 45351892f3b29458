"""One pipelined Redis connection per event loop, for the hottest read (the progress endpoints).

redis-py's asyncio client takes a pooled connection per command and writes and reads each
command on its own: a ``send`` and a wake-up with a ``recv`` per request, plus the pool's and
the command machinery's Python. With 32 requests in flight that was most of a progress
request's CPU after the HTTP server's own (bench/http/RESULTS.md). Redis answers the commands
of one connection in order, so one connection can carry every request of the process:

- a command is appended to an outbox and its future to a FIFO; the outbox is written once per
  loop iteration (``call_soon``), so the commands issued in one iteration share one ``send``;
- replies are parsed by hiredis as they arrive and complete the futures in order, many per
  ``recv``.

Errors keep redis-py's types, so callers (``realtime.store``) classify them as before: an error
reply raises :class:`redis.ResponseError`; a refused or lost connection
:class:`redis.ConnectionError`; a reply later than ``REDIS_SOCKET_TIMEOUT`` (the oldest pending
command is checked) :class:`redis.TimeoutError`, after which the connection is dropped, as
redis-py drops a connection that timed out. The next command connects again. A cancelled
caller's reply is read and dropped, keeping the order.

The URL is read as redis-py reads it (``realtime.resp.Endpoint``): ``redis://``, ``unix://``
and ``rediss://`` (TLS with redis-py's context: production's ElastiCache has transit encryption
on), with AUTH and SELECT of the URL's database.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, cast

import hiredis
import redis

from realtime.resp import Endpoint


def supports(url: str) -> bool:
    """Whether the multiplexer speaks this URL's scheme (every scheme redis-py's URLs have)."""
    return url.startswith(("redis://", "rediss://", "unix://"))


class _Protocol(asyncio.Protocol):
    """The connection: an outbox written once per loop iteration, a FIFO of waiting futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader()
        self._outbox: list[bytes] = []
        # (future, deadline) per command written or to be written, oldest first.
        self._pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                future, _deadline = self._pending.popleft()
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(redis.ResponseError(str(reply)))
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            self._fail(redis.ConnectionError(f"unreadable reply from Redis: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis.ConnectionError("Connection closed by server."))

    # --- commands
    def submit(self, command: bytes) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        if self.closed:
            future.set_exception(redis.ConnectionError("Connection closed."))
            return future
        if not self._outbox:
            self._loop.call_soon(self._flush)
        self._outbox.append(command)
        self._pending.append((future, self._loop.time() + self._timeout))
        if self._timer is None:
            self._timer = self._loop.call_at(self._pending[0][1], self._check_timeout)
        return future

    def _flush(self) -> None:
        if self._outbox and self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._outbox))
        self._outbox.clear()

    def _check_timeout(self) -> None:
        self._timer = None
        if not self._pending:
            return
        deadline = self._pending[0][1]
        if deadline <= self._loop.time():
            self._fail(redis.TimeoutError("Timeout reading from Redis"))
        else:
            self._timer = self._loop.call_at(deadline, self._check_timeout)

    def _fail(self, error: redis.RedisError) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.abort()
        self._outbox.clear()
        while self._pending:
            future, _deadline = self._pending.popleft()
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        if not self.closed:
            self._fail(redis.ConnectionError("Connection closed."))


class Multiplexer:
    """Commands of one event loop over one Redis connection (see the module doc)."""

    def __init__(self, url: str, *, socket_timeout: float, connect_timeout: float) -> None:
        self.url = url
        self._endpoint = Endpoint.from_url(url)
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def execute(self, command: bytes) -> Any:
        """The reply to one packed command (:func:`pack`)."""
        return await self.submit(command)

    def submit(self, command: bytes) -> asyncio.Future[Any]:
        """The future of the reply to one packed command: on a connection already open, the
        connection's own future (awaiting it adds no coroutine), else a task that connects
        first."""
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol.submit(command)
        return asyncio.ensure_future(self._submit_connecting(command))

    async def _submit_connecting(self, command: bytes) -> Any:
        protocol = await self._connected()
        return await protocol.submit(command)

    async def _connected(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        endpoint = self._endpoint

        def factory() -> _Protocol:
            return _Protocol(loop, self._socket_timeout)

        try:
            async with asyncio.timeout(self._connect_timeout):
                if endpoint.path is not None:
                    _transport, protocol = await loop.create_unix_connection(factory, endpoint.path)
                else:
                    _transport, protocol = await loop.create_connection(
                        factory,
                        endpoint.host or "localhost",
                        endpoint.port,
                        ssl=endpoint.ssl,
                        server_hostname=endpoint.server_hostname,
                    )
        except TimeoutError as exc:
            raise redis.TimeoutError("Timeout connecting to Redis") from exc
        except OSError as exc:  # ssl.SSLError (a certificate that does not verify) included
            raise redis.ConnectionError(
                f"Error connecting to Redis at {endpoint.where()}: {exc}"
            ) from exc
        try:
            for command in endpoint.setup_commands():
                await protocol.submit(command)
        except redis.RedisError:
            protocol.close()
            raise
        self._protocol = protocol
        return protocol

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None
