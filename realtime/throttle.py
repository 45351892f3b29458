"""Coalesce progress publishes: at most one per topic per interval, the latest always flushed.

Status changes are never delayed: they publish at once, carrying any progress still pending
for their topic. A progress change arriving within the interval replaces the pending one and
is flushed when the interval ends, so a burst of 100 updates becomes a handful of publishes
and the last value always arrives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from realtime.keys import Topic
from realtime.state import Change, is_terminal

logger = logging.getLogger(__name__)

Publish = Callable[[int, Topic, Change], Any]
Key = tuple[int, Topic]


class ProgressThrottle:
    """Thread-safe. ``auto_flush`` runs a daemon thread that flushes pending changes when due;
    tests drive :meth:`flush_due` with their own clock instead."""

    def __init__(
        self,
        publish: Publish,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        auto_flush: bool = True,
        after_flush: Callable[[], Any] | None = None,
    ) -> None:
        self._publish = publish
        self._interval = interval
        self._clock = clock
        self._lock = threading.Condition()
        self._last: dict[Key, float] = {}
        self._pending: dict[Key, Change] = {}
        self._closed = False
        # Called in the flush thread after each flush: the worker gives back the database
        # connection a rebuild may have taken there (workers/connections.py).
        self._after_flush = after_flush
        self._thread: threading.Thread | None = None
        if auto_flush:
            self._thread = threading.Thread(target=self._run, name="progress-throttle", daemon=True)
            self._thread.start()

    def submit(self, tenant_id: int, topic: Topic, change: Change) -> None:
        key = (tenant_id, topic)
        with self._lock:
            now = self._clock()
            if not change.is_progress_only:
                pending = self._pending.pop(key, None)
                if (
                    pending is not None
                    and change.progress is None
                    and not is_terminal(change.status)
                ):
                    change = replace(change, progress=pending.progress)
                self._last[key] = now
                publish_now = True
            else:
                last = self._last.get(key)
                publish_now = last is None or now - last >= self._interval
                if publish_now:
                    self._pending.pop(key, None)
                    self._last[key] = now
                else:
                    self._pending[key] = change
                    self._lock.notify()
        if publish_now:
            self._safe_publish(key, change)
        if is_terminal(change.status):
            self.forget(tenant_id, topic)

    def forget(self, tenant_id: int, topic: Topic) -> None:
        """Drop what is known of a finished topic (pending progress would be rejected anyway)."""
        with self._lock:
            self._pending.pop((tenant_id, topic), None)
            self._last.pop((tenant_id, topic), None)

    def next_due(self) -> float | None:
        with self._lock:
            if not self._pending:
                return None
            return min(self._last[key] + self._interval for key in self._pending)

    def flush_due(self, now: float | None = None) -> int:
        """Publish every pending change whose interval has passed; returns how many."""
        due: list[tuple[Key, Change]] = []
        with self._lock:
            now = self._clock() if now is None else now
            for key in list(self._pending):
                if now - self._last[key] >= self._interval:
                    due.append((key, self._pending.pop(key)))
                    self._last[key] = now
        for key, change in due:
            self._safe_publish(key, change)
        return len(due)

    def flush_all(self) -> None:
        with self._lock:
            due = list(self._pending.items())
            self._pending.clear()
        for key, change in due:
            self._safe_publish(key, change)

    def close(self) -> None:
        self.flush_all()
        with self._lock:
            self._closed = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _safe_publish(self, key: Key, change: Change) -> None:
        try:
            self._publish(key[0], key[1], change)
        except Exception:
            # A lost progress publish is repaired by the next one; it must not kill the job.
            logger.warning(
                "progress publish failed tenant=%s topic=%s", key[0], key[1], exc_info=True
            )

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                due_at = None
                if self._pending:
                    due_at = min(self._last[key] + self._interval for key in self._pending)
                timeout = None if due_at is None else max(0.0, due_at - self._clock())
                if timeout is None or timeout > 0:
                    self._lock.wait(timeout)
                    continue
            if self.flush_due() and self._after_flush is not None:
                try:
                    self._after_flush()
                except Exception:
                    logger.warning("after-flush hook failed", exc_info=True)
