"""The WebSocket consumer of ``/ws/v1/`` (PROTOCOL.md §4).

One connection carries many topic subscriptions. For each: join the topic's group, read the
snapshot, then forward changes (subscribe, snapshot, stream). States are ordered by
``(epoch, seq)`` (PROTOCOL.md §2): frames not above what the connection already sent for that
topic are dropped, so a client never sees a duplicate or a step back, whichever path (group
message, snapshot, resync) a state arrives by, and a state Redis rebuilt (seq 1 of a larger
epoch) is always taken.

A connection may also watch the tenant feeds ``jobs`` and ``videos`` (staff and admin): every
change of every item of the kind, coalesced per item for a slow client (realtime/feeds.py).

Every frame leaves through the connection's sender task (started when a frame waits, gone
when none does), fed by replies in a short queue, state changes in order, and at most one
pending progress-only state per topic (the newest): a slow client gets coalesced progress but
every status change and always the terminal state, and neither the layer nor the dispatch
loop ever waits on a client. A connection that cannot take a frame for
``REALTIME_SEND_TIMEOUT`` seconds is closed rather than buffered without bound.

Nothing runs per connection while it is idle: layer messages arrive through a receiver the
layer calls (realtime/layer.py), token expiry is two timer handles, and the periodic resync
and the check for clients that stopped reading are one sweep per process
(``realtime.watchdog``).

Nothing here touches the database: authentication is the token, authorisation reads the
topic's ``owner_id`` from Redis. When Redis forgot a watched topic or went back below what a
connection sent, the process's sweep rebuilds it from the record (``realtime.rebuild``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from realtime import deadlines, metrics, protocol, store, watchdog
from realtime.auth import SCOPE_KEY, HandshakeAuth, caller_from_access_token
from realtime.feeds import FeedSubscription, feed_of
from realtime.identity import Caller, InvalidClaims, sees_topic
from realtime.keys import Feed, InvalidTopic, Topic
from realtime.layer import RealtimeChannelLayer
from realtime.protocol import CLOSE_POLICY, CLOSE_UNAUTHENTICATED, ControlFrame, ErrorCode
from realtime.state import NO_POSITION, Position, Snapshot, is_terminal
from realtime.store import RealtimeUnavailable

logger = logging.getLogger(__name__)

# Flooding: this many refused frames within one connection closes it with 4008.
MAX_RATE_VIOLATIONS = 50
# Replies (pong, errors, acks) waiting for a client that does not read: past this, close.
MAX_CONTROL_BACKLOG = 64
# Status changes waiting for a client that does not read (a few per topic at most): past
# this, close. Progress-only frames never queue up: the newest replaces the older one.
MAX_STATE_BACKLOG = 512
# A client's epoch is one the server sent it: Redis TIME in ms when a hash was created. A claim
# far ahead of the clock is refused, since a rebuild sets the new epoch above what watchers hold
# and a forged one would push every watcher of the topic past the integers JavaScript keeps
# exact (2^53). A day leaves room for any clock skew between Redis and this process.
EPOCH_AHEAD_LIMIT_MS = 86_400_000
# Layer messages kept for a topic while its subscribe reads the snapshot (past this, the newest
# replaces the last: every state frame is a whole document).
MAX_EARLY_STATES = 16
# Seconds to say goodbye (the close frame) before the transport is aborted instead.
CLOSE_WAIT = 1.0
# Seconds each group_discard of the cleanup may take (Redis may be down; the layer then
# forgets the membership anyway).
DISCARD_WAIT = 2.0


@dataclass(slots=True)
class Subscription:
    topic: Topic
    key: str  # str(topic), kept: the frame path looks subscriptions up by it
    # No group name: it is built again (realtime.keys) on the rare way out, not kept per topic.
    owner_id: int | None
    # The (epoch, seq) of the newest state sent, or the client's own when it said it has a
    # newer one than Redis: a position above the stored one is a regression the sweep repairs.
    sent: Position = NO_POSITION
    terminal: bool = False


# Tasks spawned by consumers (closing, token expiry), held until done: one set per process.
_background: set[asyncio.Task[None]] = set()
# Per event loop, the connections with frames to send at the end of this turn (_wake_sender).
_waiting: dict[asyncio.AbstractEventLoop, list[RealtimeConsumer]] = {}


def _flush_waiting(loop: asyncio.AbstractEventLoop) -> None:
    for consumer in _waiting.pop(loop, ()):
        try:
            consumer._flush()
        except Exception:  # one broken connection must not hold back the others
            logger.exception("websocket flush failed")


async def _awaited(awaitable: Any) -> None:
    await awaitable


async def _resume(coroutine: Coroutine[Any, Any, None], waits_on: Any) -> None:
    """Run a coroutine to its end from where its first step suspended, as a task would have.

    ``waits_on`` is what that step yielded: the future it awaits (or None for a bare yield,
    ``asyncio.sleep(0)``). Awaiting the same future here makes this task wait for it, and a
    cancellation of this task cancels it, which the coroutine then sees as the task would.
    """
    while True:
        try:
            if waits_on is None:
                await asyncio.sleep(0)
            else:
                # What a task does with a future its coroutine yields: take the "blocking"
                # mark off (awaiting a future still so marked is refused), then wait on it.
                waits_on._asyncio_future_blocking = False
                await waits_on
        except BaseException as exc:  # noqa: BLE001 - handed on to the coroutine, as a task would
            if waits_on is None or not waits_on.done():
                try:
                    waits_on = coroutine.throw(exc)
                except StopIteration:
                    return
                continue
        # The future is done: the coroutine reads its result (or exception) itself.
        try:
            waits_on = coroutine.send(None)
        except StopIteration:
            return


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.updated = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RealtimeConsumer(AsyncWebsocketConsumer):
    caller: Caller
    tenant_id: int
    # Set by realtime.endpoint before the consumer runs; under the stock chain the handshake's
    # outcome is in the scope (TokenAuthMiddleware).
    handshake: HandshakeAuth | None = None
    # Channels' base class gives every instance a list of groups to join; this consumer joins
    # its groups itself, so all instances share one empty tuple.
    groups: Any = ()

    # --- Channels plumbing ----------------------------------------------------------------
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' consumer loop, lighter, when the layer delivers directly (realtime/layer.py).

        Stock, every consumer gets a channel of its own: a Redis subscription, a queue, and a
        dispatch loop racing two receive tasks (client and layer), rebuilt per message. This
        consumer receives layer messages only through its registered receiver, so its channel
        is a bare name for group membership, and its loop awaits the client alone. Per idle
        connection that leaves one task, the server's.
        """
        layer = get_channel_layer(self.channel_layer_alias)
        if not isinstance(layer, RealtimeChannelLayer):
            try:
                await super().__call__(scope, receive, send)  # any other layer: the stock loop
            finally:
                await self.release()
            return
        self.attach(scope, send, layer)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            # Every exit (disconnect, an escaped exception, cancellation at shutdown) lets go of
            # the receiver, the groups, the timers and the queues.
            await self.release()

    def attach(self, scope: Any, send: Any, layer: RealtimeChannelLayer) -> None:
        """What :meth:`__call__` sets up before its loop (realtime.endpoint runs the same loop
        in its own frame, one suspended coroutine fewer per connection)."""
        self.scope = scope
        self.channel_layer = layer
        self.channel_name = layer.new_direct_channel()
        self.base_send = send

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections (a thread hop) before every handler. This
        # consumer never uses the database, so it skips that cost on every frame.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        auth: HandshakeAuth = self.handshake or self.scope[SCOPE_KEY]
        self.subs: dict[str, Subscription] = {}
        self._feeds: dict[Feed, FeedSubscription] = {}  # tenant feeds (realtime/feeds.py)
        # Topics whose subscribe is reading the snapshot: (group, layer messages that arrived
        # meanwhile), offered once the subscription exists (audit F16).
        self._joining: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._pending: dict[str, str] = {}
        # Lists, not deques: a deque allocates a 64-slot block even when empty, and these hold
        # a frame or two for a moment; memory per idle connection is what counts here.
        self._states: list[tuple[str, str]] = []  # (topic, frame)
        self._control: list[str] = []
        self._sender_task: asyncio.Task[None] | None = None
        self._flush_queued = False
        self._token_timer: deadlines.Deadline | None = None
        self._sending_since: float | None = None
        self._closed = False
        self._bucket = TokenBucket(settings.REALTIME_RATE_PER_SECOND, settings.REALTIME_RATE_BURST)
        self._violations = 0
        await self.accept(auth.subprotocol)
        if auth.caller is None:
            await self._close(auth.close_code or CLOSE_UNAUTHENTICATED)
            return
        self.caller = auth.caller
        self.tenant_id = auth.caller.tenant_id
        self._arm_token_timers()
        # State frames skip this connection's layer queue and dispatch (realtime/layer.py).
        if (register := getattr(self.channel_layer, "register_receiver", None)) is not None:
            register(self.channel_name, self.deliver_state)
        watchdog.watch(self)
        logger.debug("websocket open tenant=%s user=%s", self.caller.tenant_id, self.caller.user_id)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        self._close_code = getattr(self, "_close_code", None) or message.get("code")
        self._closed = True
        await self.release()
        raise StopConsumer()

    async def release(self) -> None:
        """Let go of everything the connection holds; runs once, on every way out of
        :meth:`__call__` (audit F6), and whatever state the connection reached."""
        if getattr(self, "_released", False):
            return
        self._released = True
        self._closed = True
        metrics.connection_closed(getattr(self, "_close_code", None))
        layer = getattr(self, "channel_layer", None)
        channel = getattr(self, "channel_name", None)
        if (unregister := getattr(layer, "unregister_receiver", None)) is not None:
            unregister(channel)
        watchdog.unwatch(self)
        if (timer := getattr(self, "_token_timer", None)) is not None:
            timer.cancel()
        if (sender := getattr(self, "_sender_task", None)) is not None:
            sender.cancel()
        self._drop_queues()
        subs: dict[str, Subscription] = getattr(self, "subs", {})
        joining: dict[str, tuple[str, list[dict[str, Any]]]] = getattr(self, "_joining", {})
        tenant_id = getattr(self, "tenant_id", None)
        groups = [group for group, _ in joining.values()]
        if tenant_id is not None:
            keyspace = store.keyspace()
            groups += [keyspace.group(tenant_id, sub.topic) for sub in subs.values()]
        metrics.SUBSCRIPTIONS.dec(len(subs))
        feeds: dict[Feed, FeedSubscription] = getattr(self, "_feeds", {})
        groups += [feed.group for feed in feeds.values()]
        subs.clear()
        feeds.clear()
        joining.clear()
        if layer is None or channel is None:
            return
        for group in groups:
            try:
                await asyncio.wait_for(layer.group_discard(group, channel), timeout=DISCARD_WAIT)
            except Exception:  # cleanup goes on with the other groups
                logger.warning("group_discard failed on close group=%s", group, exc_info=True)

    def _drop_queues(self) -> None:
        """Free every frame waiting for the client."""
        for name in ("_states", "_control"):
            if isinstance(queued := getattr(self, name, None), list):
                queued.clear()
        if isinstance(pending := getattr(self, "_pending", None), dict):
            pending.clear()
        for feed in getattr(self, "_feeds", {}).values():
            feed.clear()

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if self._closed or not hasattr(self, "caller"):
            return
        try:
            await self._receive_frame(message)
        except RedisError as exc:  # RealtimeUnavailable, or OOM/READONLY/BUSY (audit F3)
            logger.warning("frame handling could not reach Redis: %s", exc)
            await self._error(None, "unavailable", "State is temporarily unavailable.")
        except Exception:
            # Whatever a frame does, the consumer lives on until it is closed properly.
            logger.exception(
                "frame handling failed tenant=%s user=%s", self.tenant_id, self.caller.user_id
            )
            await self._close(CLOSE_POLICY)

    async def _receive_frame(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        data = message.get("bytes")
        # Binary frames count against the size and rate limits like text frames (audit F8).
        limit = settings.REALTIME_MAX_FRAME_BYTES
        if text is not None:
            size = len(text) if len(text) > limit else len(text.encode(errors="surrogatepass"))
        else:
            size = len(data) if isinstance(data, bytes | bytearray) else 0
        if size > limit:
            await self._close(CLOSE_POLICY)
            return
        if not self._bucket.take():
            self._violations += 1
            if self._violations >= MAX_RATE_VIOLATIONS:
                await self._close(CLOSE_POLICY)
            else:
                await self._error(None, "rate_limited", "Too many frames; slow down.")
            return
        if text is None:
            await self._error(None, "bad_request", "Frames must be JSON text.")
            return
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):  # deep nesting is a RecursionError (audit F6)
            await self._error(None, "bad_request", "Frames must be JSON objects.")
            return
        if not isinstance(frame, dict):
            await self._error(None, "bad_request", "Frames must be JSON objects.")
            return
        kind = frame.get("type")
        if kind == "subscribe":
            await self._subscribe(frame)
        elif kind == "unsubscribe":
            await self._unsubscribe(frame)
        elif kind == "auth":
            await self._reauthenticate(frame)
        elif kind == "ping":
            await self._send_json(protocol.pong())
        else:
            await self._error(None, "bad_request", "Unknown frame type.")

    # --- channel layer events ---------------------------------------------------------------
    def deliver_state(self, message: dict[str, Any]) -> bool:
        """A topic's new state, published by the store's script (already a JSON frame).

        Called synchronously by the layer's receive task (realtime/layer.py), or through the
        stock queue and dispatch by :meth:`realtime_state`. Returns False for other types.
        """
        if message.get("type") != "realtime.state":
            return False
        if self._closed:
            return True
        if message.get("feed"):
            self._offer_feed(message)
            return True
        sub = self.subs.get(message["topic"])
        if sub is None:
            joining = self._joining.get(message["topic"])
            if joining is not None:  # its subscribe is reading the snapshot: keep it for then
                early = joining[1]
                if len(early) >= MAX_EARLY_STATES:
                    early[-1] = message
                else:
                    early.append(message)
        else:
            metrics.state_delivered(message)
            self._offer(
                sub,
                (int(message.get("epoch", 0)), int(message["seq"])),
                bool(message["terminal"]),
                message["frame"],
                coalesce=bool(message.get("progress_only")),
            )
        return True

    async def realtime_state(self, message: dict[str, Any]) -> None:
        self.deliver_state(message)

    # --- client frames --------------------------------------------------------------------
    async def _subscribe(self, frame: dict[str, Any]) -> None:
        raw_topic = frame.get("topic")
        if (feed := Feed.named(raw_topic)) is not None:
            await self._subscribe_feed(feed, frame)
            return
        try:
            topic = Topic.parse(raw_topic)
        except InvalidTopic:
            await self._error(raw_topic, "bad_request", "Not a topic.")
            return
        since, epoch = frame.get("since"), frame.get("epoch")
        if since is not None and not _count(since):
            await self._error(str(topic), "bad_request", "since must be a non-negative integer.")
            return
        if epoch is not None and not _count(epoch):
            await self._error(str(topic), "bad_request", "epoch must be a non-negative integer.")
            return
        if epoch is not None and epoch > time.time() * 1000 + EPOCH_AHEAD_LIMIT_MS:
            await self._error(str(topic), "bad_request", "epoch is not one the server issued.")
            return
        if epoch is not None and since is None:
            await self._error(str(topic), "bad_request", "epoch needs since.")
            return
        key = str(topic)
        sub = self.subs.get(key)
        if sub is None and self._subscription_count() >= settings.REALTIME_MAX_SUBSCRIPTIONS:
            await self._error(key, "too_many_subscriptions", "Subscription limit reached.")
            return
        group = store.keyspace().group(self.caller.tenant_id, topic)
        early: list[dict[str, Any]] = []
        if sub is None:
            # Join first, then read: a change published in between reaches us through the
            # group, is held in `early` until the subscription exists, and is then offered
            # behind the snapshot and de-duplicated by (epoch, seq), so nothing falls into the
            # gap (audit F16). Noted before joining, so that any way out discards the group.
            self._joining[key] = (group, early)
            try:
                await self.channel_layer.group_add(group, self.channel_name)
                snap = await store.asnapshot(self.caller.tenant_id, topic)
            except BaseException as exc:
                self._joined(key)
                await self.channel_layer.group_discard(group, self.channel_name)
                if isinstance(exc, RealtimeUnavailable):
                    await self._error(key, "unavailable", "State is temporarily unavailable.")
                    return
                raise
            self._joined(key)
        else:
            try:
                snap = await store.asnapshot(self.caller.tenant_id, topic)
            except RealtimeUnavailable:
                await self._error(key, "unavailable", "State is temporarily unavailable.")
                return
        if snap is None or not self._visible(snap):
            if sub is None:
                await self.channel_layer.group_discard(group, self.channel_name)
            else:
                # The topic vanished or is hidden now: leave its group too (audit F17).
                await self._drop(key)
            await self._error(key, "not_found", "No such topic.")
            return
        if sub is None:
            sub = self.subs[key] = Subscription(topic=topic, key=key, owner_id=snap.owner_id)
            metrics.SUBSCRIPTIONS.inc()
        # Without an epoch, `since` counts in the stored epoch (a client from before epochs).
        stored = snap.position
        claimed = None if since is None else (snap.epoch if epoch is None else epoch, since)
        if claimed is None or stored > claimed:
            if stored > sub.sent:
                self._offer(sub, stored, is_terminal(snap.status), snap.frame)
            else:
                await self._send_json(protocol.subscribed(key, sub.sent[1], sub.sent[0]))
        elif stored == claimed:
            sub.sent = max(sub.sent, claimed)
            sub.terminal = is_terminal(snap.status)
            await self._send_json(protocol.subscribed(key, snap.seq, snap.epoch))
        else:
            # The client saw more than Redis holds: Redis went back in time. Remember what the
            # client has, so that nothing older reaches it, and leave the topic watched: the
            # sweep rebuilds it from the record at a new epoch above the client's.
            sub.sent = max(sub.sent, claimed)
            sub.terminal = False
            await self._send_json(protocol.subscribed(key, snap.seq, snap.epoch))
            watchdog.request_repair(self)
        for message in early:  # what was published while the snapshot was read (F16)
            self.deliver_state(message)

    def _joined(self, key: str) -> None:
        """The subscribe of ``key`` is past its snapshot read. A dict keeps its table when
        emptied: an empty one is swapped in, so an idle connection holds no table for it."""
        del self._joining[key]
        if not self._joining:
            self._joining = {}

    async def _unsubscribe(self, frame: dict[str, Any]) -> None:
        raw_topic = frame.get("topic")
        if (feed := Feed.named(raw_topic)) is not None:
            await self._drop_feed(feed)
            await self._send_json(protocol.unsubscribed(feed.value))
            return
        try:
            key = str(Topic.parse(raw_topic))
        except InvalidTopic:
            await self._error(raw_topic, "bad_request", "Not a topic.")
            return
        await self._drop(key)
        await self._send_json(protocol.unsubscribed(key))

    async def _drop(self, key: str) -> None:
        """Stop watching a topic: the subscription, its queued frames and its group."""
        sub = self.subs.pop(key, None)
        self._forget_frames(key)
        if sub is not None:
            metrics.SUBSCRIPTIONS.dec()
            group = store.keyspace().group(self.caller.tenant_id, sub.topic)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _reauthenticate(self, frame: dict[str, Any]) -> None:
        token = frame.get("token")
        try:
            caller = caller_from_access_token(token) if isinstance(token, str) else None
        except InvalidClaims:
            caller = None
        if caller is None or (caller.tenant_id, caller.user_id) != (
            self.caller.tenant_id,
            self.caller.user_id,
        ):
            # A connection's identity never changes; a bad or foreign token ends it.
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        self.caller = caller
        for key, sub in list(self.subs.items()):  # a role change may hide topics
            if not sees_topic(caller, owner_id=sub.owner_id):
                await self._drop(key)
                await self._error(key, "not_found", "No such topic.")
        if not caller.sees_whole_tenant:  # ... and the feeds, which are staff only
            for feed in list(self._feeds):
                await self._drop_feed(feed)
                await self._error(feed.value, "not_found", "No such topic.")
        self._arm_token_timers()
        await self._send_json(protocol.auth_ok(caller.expires_at))

    # --- delivery -------------------------------------------------------------------------
    def _visible(self, snap: Snapshot) -> bool:
        return snap.visible_to(self.caller)

    def _offer(
        self,
        sub: Subscription,
        position: Position,
        terminal: bool,
        frame: str,
        *,
        coalesce: bool = False,
    ) -> None:
        """Queue a state frame unless the client already has this (epoch, seq) or a later one.

        ``coalesce``: a progress-only change, which replaces the topic's pending progress frame
        if the client has not taken it yet. Anything else queues in order behind earlier states
        and supersedes (drops) the topic's older pending progress frame: every frame is a whole
        state document, so the client loses nothing but a stale percent.
        """
        if position <= sub.sent:
            return
        sub.sent, sub.terminal = position, terminal
        key = sub.key
        if self._pending.pop(key, None) is not None:
            metrics.FRAMES_COALESCED.inc()
            if not self._pending and not coalesce:
                self._pending = {}  # no emptied table kept (see _joined)
        if coalesce:
            self._pending[key] = frame  # the newest goes to the back
        elif len(self._states) >= MAX_STATE_BACKLOG:
            self.close_stalled()
            return
        else:
            self._states.append((key, frame))
        self._wake_sender()

    def _forget_frames(self, key: str) -> None:
        """Drop what is queued for a topic the connection no longer watches."""
        self._pending.pop(key, None)
        if any(topic == key for topic, _frame in self._states):
            self._states = [entry for entry in self._states if entry[0] != key]

    def _wake_sender(self) -> None:
        """Have what is queued sent at the end of this event-loop turn.

        No task per frame: the connection joins its loop's list of connections with frames
        waiting, and one callback per turn (:func:`_flush_waiting`) sends them all, each
        connection's frames back to back. A send that has to wait for the client (its write
        buffer is full) continues in a task of the connection's own, which keeps sending
        until the queues are empty and then ends, so an idle connection holds no task.
        """
        if self._sender_task is not None or self._flush_queued:
            return
        self._flush_queued = True
        loop = asyncio.get_running_loop()
        waiting = _waiting.get(loop)
        if waiting is None:
            waiting = _waiting[loop] = []
            loop.call_soon(_flush_waiting, loop)
        waiting.append(self)

    def _next_frame(self) -> str | None:
        # Per topic the order holds: a status frame is queued behind earlier ones; a pending
        # progress frame always has a higher seq than the topic's queued status frames.
        # Feed frames (one per item, realtime/feeds.py) come after the topics' frames.
        if self._control:
            return self._control.pop(0)
        if self._states:
            return self._states.pop(0)[1]
        if pending := self._pending:
            frame = pending.pop(next(iter(pending)))
            if not pending:
                self._pending = {}  # no emptied table kept (see _joined)
            return frame
        if self._feeds and self._feed_backlog():
            return self._next_feed_frame()
        return None

    def _flush(self) -> None:
        """Send queued frames until the queues are empty or a send has to wait.

        The server's ``send`` is run eagerly: when it completes without waiting (its usual
        case: the frame goes to the transport at once), no task or loop turn is spent on it.
        When it suspends, a task finishes it and goes on with the rest (:meth:`_send_queued`).
        """
        self._flush_queued = False
        while self._sender_task is None:
            frame = self._next_frame()
            if frame is None:
                return
            send = self.base_send({"type": "websocket.send", "text": frame})
            if not asyncio.iscoroutine(send):  # an awaitable of another kind: await it in a task
                send, waits_on = _awaited(send), None
                self._sending_since = time.monotonic()
                self._sender_task = asyncio.create_task(self._send_queued(send, waits_on))
                return
            try:
                waits_on = send.send(None)
            except StopIteration:
                metrics.FRAMES_SENT.inc()
                continue
            except Exception:  # the client is gone: its disconnect ends the connection
                logger.debug("websocket send failed", exc_info=True)
                return
            self._sending_since = time.monotonic()
            self._sender_task = asyncio.create_task(self._send_queued(send, waits_on))

    async def _send_queued(self, send: Coroutine[Any, Any, None], waits_on: Any) -> None:
        """Finish a send that suspended, then send the rest (in this task while sends wait)."""
        try:
            await _resume(send, waits_on)
            metrics.FRAMES_SENT.inc()
            self._sending_since = None
            while (frame := self._next_frame()) is not None:
                self._sending_since = time.monotonic()
                await self.base_send({"type": "websocket.send", "text": frame})
                metrics.FRAMES_SENT.inc()
                self._sending_since = None
        finally:
            self._sender_task = None  # nothing waits: drop the finished task too

    # --- tenant feeds (realtime/feeds.py) ---------------------------------------------------
    async def _subscribe_feed(self, feed: Feed, frame: dict[str, Any]) -> None:
        """Watch every change of the tenant's jobs or videos: staff and admin only.

        No snapshot: a feed has no state of its own, the list endpoint gives the items and
        each change brings its item's whole document. The group is joined before the answer,
        so every change published after ``subscribed`` reaches the client.
        """
        if "since" in frame or "epoch" in frame:
            await self._error(feed.value, "bad_request", "A feed takes neither since nor epoch.")
            return
        if not self.caller.sees_whole_tenant:
            await self._error(feed.value, "not_found", "No such topic.")
            return
        if feed not in self._feeds:
            if self._subscription_count() >= settings.REALTIME_MAX_SUBSCRIPTIONS:
                await self._error(
                    feed.value, "too_many_subscriptions", "Subscription limit reached."
                )
                return
            group = store.keyspace().feed_group(self.caller.tenant_id, feed)
            subscription = self._feeds[feed] = FeedSubscription(feed=feed, group=group)
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except BaseException:
                self._feeds.pop(feed, None)
                await self.channel_layer.group_discard(group, self.channel_name)
                raise
            subscription.ready = True
        await self._send_json(protocol.subscribed(feed.value, 0, 0))
        self._wake_sender()  # changes that came while joining wait behind the answer

    async def _drop_feed(self, feed: Feed) -> None:
        subscription = self._feeds.pop(feed, None)
        if subscription is not None:
            subscription.clear()
            await self.channel_layer.group_discard(subscription.group, self.channel_name)

    def _offer_feed(self, message: dict[str, Any]) -> None:
        if not self._feeds:
            return
        item = message["topic"]
        kind = feed_of(item)
        feed = self._feeds.get(kind) if kind is not None else None
        if feed is not None:
            position = (int(message.get("epoch", 0)), int(message["seq"]))
            self._feed_offer(
                feed,
                item,
                position,
                bool(message["terminal"]),
                message["frame"],
                progress_only=bool(message.get("progress_only")),
            )

    def _feed_offer(
        self,
        feed: FeedSubscription,
        item: str,
        position: Position,
        terminal: bool,
        frame: str,
        *,
        progress_only: bool = False,
    ) -> bool:
        if not feed.offer(item, position, terminal, frame, progress_only=progress_only):
            return False
        if feed.overflowing:
            feed.clear()  # never to be sent: free it now, and close once
            self.close_stalled()
        elif feed.ready:
            self._wake_sender()
        return True

    def _feed_backlog(self) -> bool:
        return any(feed.has_frames for feed in self._feeds.values())

    def _next_feed_frame(self) -> str:
        """The next feed frame, taking turns between the feeds so neither starves the other."""
        feeds = self._feeds
        if len(feeds) == 1:
            return next(iter(feeds.values())).take()
        for key, feed in list(feeds.items()):
            if feed.has_frames:
                del feeds[key]
                feeds[key] = feed  # to the back of the line
                return feed.take()
        raise LookupError("no feed frame waits")

    def _subscription_count(self) -> int:
        return len(self.subs) + len(self._feeds)

    # --- the process-wide sweep (realtime.watchdog.Sweeper) -------------------------------
    def watched(self) -> Iterator[tuple[Topic, Position]]:
        if self._closed:
            return
        for sub in list(self.subs.values()):
            if not sub.terminal:
                yield sub.topic, sub.sent
        for feed in list(self._feeds.values()):
            yield from feed.watched()

    def stalled(self, now: float) -> bool:
        since = self._sending_since
        return (
            not self._closed and since is not None and now - since > settings.REALTIME_SEND_TIMEOUT
        )

    def close_stalled(self) -> None:
        """Close a connection whose client stopped reading (from the sweep or a full backlog)."""
        self._spawn(self._close_stalled)

    async def _close_stalled(self) -> None:
        logger.info(
            "websocket closed: client not reading tenant=%s user=%s",
            self.caller.tenant_id,
            self.caller.user_id,
        )
        if self._sender_task is not None:
            self._sender_task.cancel()
        self._drop_queues()  # what it did not read is freed now, not at the disconnect
        await self._close(CLOSE_POLICY)

    async def repair(self, topic: Topic) -> bool:
        """Re-read a topic whose stored (epoch, seq) moved past what was sent, and send it."""
        key = str(topic)
        sub = self.subs.get(key)
        feed = self._feeds.get(Feed.of(topic.kind))
        feed_sent = feed.sent(key) if feed is not None else None
        if (sub is None and feed_sent is None) or self._closed:
            return False
        snap = await store.asnapshot(self.tenant_id, topic)
        if snap is None or not self._visible(snap):
            return False
        sent = False
        if sub is not None and snap.position > sub.sent:
            self._offer(sub, snap.position, is_terminal(snap.status), snap.frame)
            sent = True
        if feed is not None and feed_sent is not None and snap.position > feed_sent:
            terminal = is_terminal(snap.status)
            sent = self._feed_offer(feed, key, snap.position, terminal, snap.frame) or sent
        return sent

    # --- token expiry: one timer, no task --------------------------------------------------
    def _arm_token_timers(self) -> None:
        """The warning (PROTOCOL.md token_expiring) at expiry minus the warning time; the
        warning's callback then arms the close at expiry itself. One deadline at a time, under
        the loop's one deadline timer (realtime/deadlines.py)."""
        if self._token_timer is not None:
            self._token_timer.cancel()
        expires_at = self.caller.expires_at
        warn_in = expires_at - settings.REALTIME_TOKEN_WARNING - time.time()
        self._token_timer = deadlines.call_later(warn_in, self._token_expiring, expires_at)

    def _token_expiring(self, expires_at: int) -> None:
        self._queue(protocol.token_expiring(expires_at))
        expire_in = expires_at - time.time()
        self._token_timer = deadlines.call_later(expire_in, self._spawn, self._token_expired)

    async def _token_expired(self) -> None:
        logger.info(
            "websocket closed: token expired tenant=%s user=%s",
            self.caller.tenant_id,
            self.caller.user_id,
        )
        await self._close(CLOSE_UNAUTHENTICATED)

    def _spawn(self, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.create_task(factory())
        _background.add(task)
        task.add_done_callback(_background.discard)

    # --- helpers --------------------------------------------------------------------------
    async def _send_json(self, frame: ControlFrame) -> None:
        """Queue a reply for the sender task; never waits on the client."""
        if not self._queue(frame) and not self._closed:
            await self._close(CLOSE_POLICY)  # asks but does not read its answers

    def _queue(self, frame: ControlFrame) -> bool:
        """Queue a control frame; False if the connection is closed or its backlog is full."""
        if self._closed or len(self._control) >= MAX_CONTROL_BACKLOG:
            return False
        self._control.append(json.dumps(frame))
        self._wake_sender()
        return True

    async def _error(self, topic: Any, code: ErrorCode, detail: str) -> None:
        topic_text = topic if isinstance(topic, str) and len(topic) <= 100 else None
        await self._send_json(protocol.error(topic_text, code, detail))

    async def _close(self, code: int) -> None:
        if not self._closed:
            self._closed = True
            self._close_code = code
            # A stuck transport must not hold the dispatch loop: bounded wait to say goodbye,
            # and a client that cannot take the close frame has its connection aborted (F9).
            try:
                await asyncio.wait_for(self.close(code), timeout=CLOSE_WAIT)
            except Exception:  # noqa: BLE001 - timed out, or the client is already gone
                self._abort_transport()

    def _abort_transport(self) -> None:
        """Drop the TCP connection now, with whatever it could not send.

        ASGI has no abort message, and closing a transport waits for its write buffer to drain,
        which a client that does not read never lets happen. uvicorn's ``send`` is a method of
        its connection protocol, which holds the asyncio transport: abort that. The server then
        reports the disconnect, and :meth:`__call__` releases the rest. On a server whose
        ``send`` exposes no transport (daphne) this does nothing, and its own timeouts apply.
        The ``Protocol.transport`` attribute is uvicorn's, not part of ASGI: tests/integration/
        realtime/test_stalled_reader_server.py pins it against a real server process.
        """
        server_protocol = getattr(self.base_send, "__self__", None)
        transport = getattr(server_protocol, "transport", None)
        abort = getattr(transport, "abort", None)
        if callable(abort):
            # Linger 0: the kernel resets the connection and drops its send queue too, rather
            # than keeping it (and a FIN behind it) for a peer whose window never opens.
            raw: Any = getattr(transport, "get_extra_info", lambda _name: None)("socket")
            with contextlib.suppress(AttributeError, OSError):
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            logger.info("websocket transport aborted: the close frame could not be sent")
            abort()


def _count(value: object) -> bool:
    """A non-negative JSON integer (``true`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
