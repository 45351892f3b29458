"""Terminal states that could not be published (Redis down) are retried until Redis answers.

The database already holds the outcome; this only makes watchers see it sooner than their
next read of the record. Changes are idempotent in Redis (a terminal topic never changes
again), so retrying is always safe. Bounded: under a long outage the oldest are dropped and
the read paths (progress 404 → detail, a redelivery) repair them instead.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from realtime.keys import Topic
from realtime.state import Change
from realtime.store import RealtimeUnavailable

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000


class Republisher:
    def __init__(self, publish: Callable[[int, Topic, Change], Any]) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._pending: OrderedDict[tuple[int, Topic], Change] = OrderedDict()

    def add(self, tenant_id: int, topic: Topic, change: Change) -> None:
        with self._lock:
            self._pending[(tenant_id, topic)] = change
            self._pending.move_to_end((tenant_id, topic))
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def retry(self) -> int:
        """Publish what is pending, oldest first; stops at the first failure. Returns how many
        were published."""
        with self._lock:
            items = list(self._pending.items())
        done = 0
        for key, change in items:
            try:
                self._publish(key[0], key[1], change)
            except RealtimeUnavailable:
                break
            except Exception:
                logger.exception("republish failed tenant=%s topic=%s; dropped", *key)
            with self._lock:
                if self._pending.get(key) is change:
                    del self._pending[key]
            done += 1
        if done:
            logger.info("republished %s terminal state(s)", done)
        return done
