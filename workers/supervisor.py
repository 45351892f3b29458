"""The supervisor: one thread that tends the running slots and the worker's housekeeping.

Every ``tick`` it

- fails the running jobs past their time limit (the slot is abandoned, the job FAILED, the
  message deleted),
- heartbeats the others when due: the lease in the database first (only while this attempt
  holds it), then the message's visibility, never past ``max_visibility`` from the receive
  (:meth:`QueueConfig.extension`). A lease that is gone or a receipt handle SQS refuses loses
  the attempt; a failure that may be a hiccup is retried a second later until the lease
  would run out,
- sees cancel requests (PROTOCOL.md §2): every ``cancel_check_interval`` it reads the running
  jobs' flags from Redis in one pipelined call, and each heartbeat reads the job row's flag
  from the database too, so a request is seen within one heartbeat even if Redis lost it; a
  job asked to stop gets its slot's ``cancelled`` event, and its handler ends it CANCELLED,
- every ``republish_interval``, retries the terminal states Redis did not take,
- every ``dlq_sweep_interval``, runs the dead-letter sweep (``workers/deadletters.py``),
- while the database gate is closed, checks when due whether the database answers again
  (``workers/dbgate.py``).

The Redis work (the cancel flags, the republish retries) runs in a second thread, the
supervisor's *Redis* thread: a Redis that hangs holds a command for up to
``REDIS_SOCKET_TIMEOUT``, longer than a short visibility timeout, and a heartbeat that waited
for it would let SQS hand the message to another receive while this attempt still runs
(docs/RELIABILITY.md, "worker's Redis hangs"). Heartbeats and time limits touch only the
database and SQS.

The supervisor thread is the only thread besides the job threads that uses the database, and
each pass closes its connection (``workers/connections.py``).
"""

from __future__ import annotations

import logging
import math
import threading

from django import db
from django.db import DatabaseError

from domains.jobs import services
from domains.jobs.dispatch import QueueKind
from domains.jobs.models import JobStatus
from realtime import store
from workers import metrics
from workers.config import QueueConfig
from workers.connections import closing
from workers.dbgate import DatabaseGate
from workers.deadletters import DeadLetterSweep
from workers.republish import Republisher
from workers.slots import Clock, Slot, Slots
from workers.sqs import SQS_ERRORS, MessageQueue, is_lost_handle
from workers.stats import WorkerStats

logger = logging.getLogger(__name__)


def _database_answers() -> bool:
    try:
        with db.connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        db.connection.close()
        return False
    return True


class Supervisor:
    def __init__(
        self,
        *,
        kind: QueueKind,
        config: QueueConfig,
        slots: Slots,
        queue: MessageQueue,
        stats: WorkerStats,
        republisher: Republisher,
        tick: float,
        republish_interval: float,
        sweep: DeadLetterSweep | None,
        sweep_interval: float,
        clock: Clock,
        cancel_check_interval: float = 0.0,
        gate: DatabaseGate | None = None,
    ) -> None:
        self.gate = gate
        self.kind = kind
        self.config = config
        self.slots = slots
        self.queue = queue
        self.stats = stats
        self.republisher = republisher
        self.tick = tick
        self.republish_interval = republish_interval
        self.cancel_check_interval = cancel_check_interval
        self.sweep = sweep if sweep_interval > 0 else None
        self.sweep_interval = sweep_interval
        self.clock = clock
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- the threads ----------------------------------------------------------------------------
    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._loop, name=f"{self.kind}-supervisor", daemon=True),
            threading.Thread(
                target=self._redis_loop, name=f"{self.kind}-supervisor-redis", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _loop(self) -> None:
        next_sweep = self.clock()
        while not self._done.wait(self.tick):
            try:
                with closing():
                    now = self.clock()
                    if self.gate is not None and self.gate.check_due(now):
                        self.gate.checked(answered=_database_answers(), now=self.clock())
                    self.tend(now)
                    if self.sweep is not None and now >= next_sweep:
                        report = self.sweep.sweep(between_batches=self.tend)
                        self.stats.failed += report.failed
                        self.stats.dead_letters_deleted += report.deleted
                        if report.depth is not None:
                            metrics.dlq_depth(self.kind, report.depth)
                        # Bound reached: more may be waiting, so go on at the next tick.
                        next_sweep = now if report.exhausted else now + self.sweep_interval
            except Exception:
                logger.exception("supervisor pass failed")

    def _redis_loop(self) -> None:
        """Cancel flags and republish retries: the supervisor's work that waits on Redis. It
        never touches the database (``workers/connections.py``)."""
        next_republish = next_cancel_check = self.clock()
        while not self._done.wait(self.tick):
            try:
                now = self.clock()
                if self.cancel_check_interval > 0 and now >= next_cancel_check:
                    next_cancel_check = now + self.cancel_check_interval
                    self.check_cancel_requests()
                if len(self.republisher) and now >= next_republish:
                    next_republish = now + self.republish_interval
                    self.republisher.retry()
            except Exception:
                logger.exception("supervisor Redis pass failed")

    # --- running slots ------------------------------------------------------------------------
    def tend(self, now: float | None = None) -> None:
        """Time limits and due heartbeats of the running slots (also between DLQ batches)."""
        due = self.slots.due(self.clock() if now is None else now)
        for slot in due.timed_out:
            self.time_out(slot)
        for slot in due.heartbeat:
            self.heartbeat(slot)

    def heartbeat(self, slot: Slot) -> None:
        run = slot.run
        now = self.clock()
        with slot.log_scope():
            extension = self.config.extension(now - slot.message.received_at)
            if extension is None:
                # At the kind's visibility cap: the time limit ends the job before it reappears.
                logger.info(
                    "visibility is at its cap of %s s; not extended", self.config.max_visibility
                )
                slot.next_beat = math.inf
                return
            try:
                held = services.job_lease_extend(
                    run.tenant_id,
                    job_id=run.job_id,
                    attempt=run.attempt,
                    lease_seconds=extension.lease,
                )
            except DatabaseError as exc:
                metrics.heartbeat_failed(self.kind, "lease")
                if now + self.tick >= slot.lease_until:
                    self.lose(slot, f"lease could not be extended: {exc}", release_lease=False)
                else:
                    logger.warning("lease extension failed, retrying: %s", exc)
                    slot.next_beat = now + 1
                return
            if not held:
                self.lose(slot, "another attempt took the job over", release_lease=False)
                return
            slot.lease_until = now + extension.lease
            self._cancel_checked_in_database(slot)
            try:
                self.queue.extend(slot.message, extension.visibility)
            except SQS_ERRORS as exc:
                metrics.heartbeat_failed(self.kind, "visibility")
                if is_lost_handle(exc) or now + self.tick >= slot.visible_until:
                    self.lose(slot, f"visibility could not be extended: {exc}", release_lease=True)
                else:
                    logger.warning("visibility extension failed, retrying: %s", exc)
                    slot.next_beat = now + 1
                return
            slot.visible_until = now + extension.visibility
            slot.next_beat = now + self.config.heartbeat_interval
            slot.heartbeats += 1
            self.stats.heartbeats += 1
            logger.debug(
                "heartbeat: visible %s s, lease %s s", extension.visibility, extension.lease
            )

    # --- cancel requests ------------------------------------------------------------------------
    def check_cancel_requests(self) -> None:
        """Read the cancel flags of the running jobs not yet told, from Redis, in one trip."""
        waiting = [slot for slot in self.slots.running() if not slot.cancelled.is_set()]
        if not waiting:
            return
        try:
            flags = store.cancel_requests_many(
                [(slot.run.tenant_id, slot.run.topic) for slot in waiting]
            )
        except store.RealtimeUnavailable as exc:
            # The heartbeat reads the database's flag: a request is seen at the latest then.
            logger.debug("cancel requests not read from Redis: %s", exc)
            return
        for slot, requested in zip(waiting, flags, strict=True):
            if requested:
                self.cancel(slot, "Redis")

    def _cancel_checked_in_database(self, slot: Slot) -> None:
        if slot.cancelled.is_set():
            return
        run = slot.run
        try:
            requested = services.job_cancel_requested(
                run.tenant_id, job_id=run.job_id, attempt=run.attempt
            )
        except DatabaseError as exc:
            logger.warning("cancel request not read, next heartbeat retries: %s", exc)
            return
        if requested:
            self.cancel(slot, "the database")

    def cancel(self, slot: Slot, source: str) -> None:
        """Tell the slot's handler that its job was asked to stop (once)."""
        if slot.cancelled.is_set():
            return
        slot.cancelled.set()
        with slot.log_scope():
            logger.info("cancel requested (seen in %s); the job stops", source)

    def lose(self, slot: Slot, reason: str, *, release_lease: bool) -> None:
        """The attempt no longer owns the job: abandon it; if only SQS refused, give the lease
        back so the next delivery claims at once."""
        if not self.slots.abandon(slot, reason):
            return
        run = slot.run
        self.stats.lost += 1
        metrics.job_settled(self.kind, "lost")
        logger.warning("lease lost (%s); the attempt stops", reason)
        if release_lease:
            try:
                services.job_lease_release(run.tenant_id, job_id=run.job_id, attempt=run.attempt)
            except DatabaseError:
                logger.exception("lease release failed; the next attempt waits for it to end")

    def time_out(self, slot: Slot) -> None:
        if not self.slots.abandon(slot, "time limit exceeded"):
            return
        run = slot.run
        with slot.log_scope():
            limit = self.config.max_runtime
            logger.error("time limit of %g s exceeded; the job fails", limit)
            self.stats.timed_out += 1
            try:
                finished = services.job_finish(
                    run.tenant_id,
                    job_id=run.job_id,
                    attempt=run.attempt,
                    status=JobStatus.FAILED,
                    error=f"The job exceeded its time limit of {limit:g} seconds.",
                    on_publish_failure=self.republisher.add,
                )
            except DatabaseError:
                logger.exception("time-limit failure not recorded; the lease will end instead")
                return
            if finished:
                self.stats.failed += 1
                metrics.job_settled(self.kind, "timed_out", self.clock() - slot.started)
                self.queue.delete(slot.message)
