"""The poller: long-poll SQS for as many messages as there are free slots, and hand each one
to a job thread at once.

Nothing is prefetched: a received message is running a moment later. Messages received after
a stop are made visible again at once (kombu #1819). Receive errors back off exponentially
(1 s up to 30 s). While the database gate is closed (``workers/dbgate.py``) nothing is
received. The poller is the only caller of ``receive`` on the job queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from workers.dbgate import DatabaseGate
from workers.slots import Slots, SlotsStuck
from workers.sqs import SQS_ERRORS, MessageQueue, ReceivedMessage
from workers.stats import WorkerStats

logger = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


class Poller:
    def __init__(
        self,
        *,
        queue: MessageQueue,
        slots: Slots,
        stopping: threading.Event,
        start: Callable[[ReceivedMessage], None],
        on_stuck: Callable[[], None],
        stats: WorkerStats,
        visibility_timeout: int,
        wait_seconds: int,
        stuck_exit_after: float,
        gate: DatabaseGate | None = None,
    ) -> None:
        self.gate = gate
        self.queue = queue
        self.slots = slots
        self.stopping = stopping
        self.start = start
        self.on_stuck = on_stuck
        self.stats = stats
        self.visibility_timeout = visibility_timeout
        self.wait_seconds = wait_seconds
        self.stuck_exit_after = stuck_exit_after

    def run(self) -> None:
        """Receive and start jobs until ``stopping`` is set."""
        backoff = 0.0
        while not self.stopping.is_set():
            if self.gate is not None and not self.gate.wait_open(self.stopping):
                continue
            free = self._wait_for_free_slots()
            if free == 0:
                continue
            try:
                messages = self.queue.receive(
                    max_messages=free,
                    wait_seconds=self.wait_seconds,
                    visibility_timeout=self.visibility_timeout,
                )
            except SQS_ERRORS as exc:
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
                logger.warning("receive failed, retrying in %.0f s: %s", backoff, exc)
                self.stopping.wait(backoff)
                continue
            backoff = 0.0
            self.stats.received += len(messages)
            for index, message in enumerate(messages):
                if self.stopping.is_set():
                    rest = messages[index:]
                    released = self.queue.release_many(rest)
                    self.stats.released += released
                    logger.info("released %s of %s unstarted message(s)", released, len(rest))
                    break
                self.start(message)

    def _wait_for_free_slots(self) -> int:
        try:
            return self.slots.wait_for_free(
                stopping=self.stopping, stuck_after=self.stuck_exit_after
            )
        except SlotsStuck:
            logger.error(
                "every slot has been held by an abandoned handler for %.0f s; exiting "
                "so that a fresh process takes over",
                self.stuck_exit_after,
            )
            self.on_stuck()
            return 0
