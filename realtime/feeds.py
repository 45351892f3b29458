"""One connection's subscription to a tenant feed (PROTOCOL.md §1, §4): per-item order and
per-item coalescing.

The state script publishes every accepted change twice: on its topic's group and on the feed
group of its kind (``KeySpace.feed_group``), the second copy marked ``feed``. A connection that
watches a feed gets the second copies here. For each item (job or video) the feed keeps the
``(epoch, seq)`` it last queued, so per item the client sees positions strictly increasing with
no duplicate, whichever path (the feed, the resync sweep) a state came by.

Per item, frames wait as the topic's do (realtime/consumers.py): status changes in order, and a
progress-only change replaces the item's pending progress frame (latest wins), while any newer
frame supersedes it. Items take turns: after one frame of an item is sent, the item goes to
the back of the line, so one busy job cannot hold the others back, and a replaced frame keeps
its item's place. A client too slow for even that (``MAX_QUEUED_FRAMES`` waiting) gets the
latest state of each item only, whatever moved: every frame is a whole document, so it loses
nothing but intermediate states. A terminal state is the last one of its item, so nothing
replaces it before it is sent: it is always delivered.

The items seen running are what the sweep re-reads after the layer lost messages (a Redis
restart): a dashboard's running jobs are repaired like watched topics. Items that ended are
remembered a while longer (``ENDED_MEMORY``), so that a state still in flight when the sweep
already sent a newer one is dropped rather than sent out of order.

Pure logic: no Django, no Channels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from realtime.keys import Feed, InvalidTopic, Topic
from realtime.state import Position

# Items that ended, remembered for ordering; past this, the oldest are forgotten.
ENDED_MEMORY = 1024
# Running items whose position is kept for the sweep; past this, the oldest are forgotten
# (they are still delivered, only no longer re-read after an interruption). A tenant's
# unfinished jobs are capped far lower (JOB_ACTIVE_MAX_PER_TENANT).
LIVE_MEMORY = 4096
# Frames waiting for the client across all items; past this, an item that changes keeps only
# its newest frame (latest wins per item, status changes included).
MAX_QUEUED_FRAMES = 1024
# Items with a frame waiting for a client that does not read: past this, the connection is
# closed as one that stopped reading (4008), rather than buffering without bound.
MAX_PENDING_ITEMS = 4096


_FEED_OF_KIND = {"job": Feed.JOBS, "video": Feed.VIDEOS}


def feed_of(item: str) -> Feed | None:
    """The feed that carries the item topic ``item`` (``job:<id>`` → ``jobs``)."""
    return _FEED_OF_KIND.get(item.partition(":")[0])


@dataclass(slots=True)
class FeedSubscription:
    feed: Feed
    group: str
    # False until the subscription is confirmed to the client: frames wait until then, so the
    # client hears "subscribed" before the first state of the feed.
    ready: bool = False
    # item topic -> (the topic, the newest position queued), for running items (swept).
    live: dict[str, tuple[Topic, Position]] = field(default_factory=dict)
    # item topic -> the newest position queued, for items that ended (bounded, oldest first).
    ended: dict[str, Position] = field(default_factory=dict)
    # item topic -> its frames not yet sent, oldest first, each with whether it is
    # progress-only; the dict's order is the order in which items take their turns.
    pending: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    queued: int = 0  # frames in ``pending``

    def offer(
        self, item: str, position: Position, terminal: bool, frame: str, *, progress_only: bool
    ) -> bool:
        """Queue the item's state unless a position at or above it was queued already.

        Returns False when dropped (old, a duplicate, or ``item`` names no topic).
        """
        known = self.live.get(item)
        sent = known[1] if known is not None else self.ended.get(item)
        if sent is not None and position <= sent:
            return False
        if terminal:
            self.live.pop(item, None)
            self.ended.pop(item, None)
            self.ended[item] = position
            if len(self.ended) > ENDED_MEMORY:
                del self.ended[next(iter(self.ended))]
        else:
            if known is None:
                try:
                    topic = Topic.parse(item)
                except InvalidTopic:
                    return False
                self.ended.pop(item, None)
            else:
                topic = known[0]
            self.live[item] = (topic, position)
            if len(self.live) > LIVE_MEMORY:
                del self.live[next(iter(self.live))]
        frames = self.pending.get(item)
        if frames is None:
            self.pending[item] = [(frame, progress_only)]
            self.queued += 1
            return True
        if frames[-1][1]:  # a progress frame not sent yet: superseded by anything newer
            frames.pop()
            self.queued -= 1
        frames.append((frame, progress_only))
        self.queued += 1
        if self.queued > MAX_QUEUED_FRAMES and len(frames) > 1:
            self.queued -= len(frames) - 1
            del frames[:-1]  # the client is too slow: the newest state of the item only
        return True

    def sent(self, item: str) -> Position | None:
        """The newest position queued for ``item``, if the feed knows it."""
        known = self.live.get(item)
        return known[1] if known is not None else self.ended.get(item)

    @property
    def has_frames(self) -> bool:
        return self.ready and len(self.pending) > 0

    @property
    def overflowing(self) -> bool:
        return len(self.pending) > MAX_PENDING_ITEMS

    def take(self) -> str:
        """The next frame of the item whose turn it is; call when ``has_frames``."""
        item = next(iter(self.pending))
        frames = self.pending.pop(item)
        self.queued -= 1
        if len(frames) == 1:  # the usual case: one frame per item waiting
            return frames[0][0]
        frame = frames.pop(0)[0]
        self.pending[item] = frames  # its next frame waits for the others' turn
        return frame

    def watched(self) -> Iterator[tuple[Topic, Position]]:
        """(topic, position queued) of each running item, for the resync sweep."""
        yield from list(self.live.values())

    def clear(self) -> None:
        self.pending.clear()
        self.queued = 0
