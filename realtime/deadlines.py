"""Many callbacks at their times under one event-loop timer per loop.

Every connection has a deadline (its token's warning, then its expiry): one
``loop.call_later`` each is one timer handle per idle socket, and under uvloop a libuv timer
too, memory that grows with the connections (bench/ws/RESULTS.md). Here a loop keeps one
heap of deadlines and one timer for the earliest; a deadline costs one small object.

A cancelled deadline lets go of its callback at once (nothing it refers to stays alive) and
is dropped from the heap when it reaches the top, or all at once when the cancelled ones are
half the heap, so connections that come and go leave no garbage behind.

Pure asyncio: no Django.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_order = itertools.count()  # ties broken by scheduling order, as the loop's own timers
# A loop may run a timer up to its clock resolution early (uvloop: 1 ms); deadlines due within
# this are run by that timer rather than re-armed for a sub-millisecond wait.
EARLY = 0.001


class Deadline:
    __slots__ = ("args", "callback", "owner", "seq", "when")

    def __init__(
        self, owner: Deadlines, when: float, callback: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        self.owner, self.when, self.seq = owner, when, next(_order)
        self.callback: Callable[..., Any] | None = callback
        self.args = args

    def __lt__(self, other: Deadline) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        if self.callback is not None:
            self.callback, self.args = None, ()
            self.owner.cancelled()

    @property
    def active(self) -> bool:
        return self.callback is not None


class Deadlines:
    """One event loop's deadlines: a heap and one timer for the earliest."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.heap: list[Deadline] = []
        self.dead = 0  # cancelled deadlines still in the heap
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Deadline:
        deadline = Deadline(self, self.loop.time() + max(0.0, delay), callback, args)
        heapq.heappush(self.heap, deadline)
        if self.timer_at is None or deadline.when < self.timer_at:
            self._arm(deadline.when)
        return deadline

    def cancelled(self) -> None:
        self.dead += 1
        if self.dead * 2 > len(self.heap) >= 64:
            self.heap = [d for d in self.heap if d.active]
            heapq.heapify(self.heap)
            self.dead = 0

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer, self.timer_at = self.loop.call_at(when, self._fire), when

    def _fire(self) -> None:
        self.timer = self.timer_at = None
        heap = self.heap
        now = self.loop.time() + EARLY
        while heap and heap[0].when <= now:
            deadline = heapq.heappop(heap)
            callback, args = deadline.callback, deadline.args
            if callback is None:
                self.dead -= 1
                continue
            deadline.callback, deadline.args = None, ()
            try:
                callback(*args)
            except Exception:  # one broken callback must not hold back the others
                logger.exception("deadline callback failed")
        while heap and not heap[0].active:
            heapq.heappop(heap)
            self.dead -= 1
        if heap:
            self._arm(heap[0].when)


_by_loop: dict[asyncio.AbstractEventLoop, Deadlines] = {}


def call_later(delay: float, callback: Callable[..., Any], *args: Any) -> Deadline:
    """Like ``loop.call_later`` on the running loop, under the loop's one deadline timer."""
    loop = asyncio.get_running_loop()
    deadlines = _by_loop.get(loop)
    if deadlines is None or deadlines.loop.is_closed():
        for stale in [k for k in _by_loop if k.is_closed()]:
            del _by_loop[stale]
        deadlines = _by_loop[loop] = Deadlines(loop)
    return deadlines.call_later(delay, callback, *args)
