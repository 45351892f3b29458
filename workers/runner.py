"""The worker: one process serving one queue kind with capped slots, leases and shutdown.

:class:`Worker` wires the roles and runs the part that is about one job:

- the **poller** (``workers/poller.py``, the thread calling :meth:`Worker.run`) long-polls
  for at most as many messages as there are free slots and starts one job thread per message;
- **job threads** (at most ``concurrency``; :meth:`Worker.execute`): claim the row (one
  statement, or a short transaction), give the database connection back to the pool, run the
  handler (``workers/outcomes.py``), then :meth:`Worker.settle` the outcome in a statement
  that checks the attempt, publish after commit, delete the message;
- the **slots** (``workers/slots.py``): the state machine CLAIMING → RUNNING → FINISHING |
  ABANDONED that the job threads, the supervisor and the shutdown share;
- the **supervisor** (``workers/supervisor.py``): heartbeats, time limits, cancel requests,
  republishing and the dead-letter sweep (``workers/deadletters.py``);
- :meth:`Worker.shutdown`: the grace period, then releasing what still runs.

A worker holds at most ``concurrency + 1`` database connections (``workers/connections.py``
says where that is kept). Correctness never rests on SQS: every transition is fenced in the
database by the attempt number (docs/adr/0004-worker-leases-and-attempt-fencing.md). SQS
only decides *when* a job is tried again. See docs/workers.md for the failure semantics.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, assert_never

from django.conf import settings
from django.db import DatabaseError
from django_guid import clear_guid, set_guid

from domains.common import logcontext
from domains.jobs import services
from domains.jobs.dispatch import JobMessage, QueueKind, queue_url
from domains.jobs.models import JobStatus
from domains.jobs.services import ClaimResult
from realtime import rebuild, store
from realtime.throttle import ProgressThrottle
from workers import config as worker_config
from workers import metrics
from workers.base import Handler, JobRun
from workers.config import QueueConfig
from workers.connections import close_all, closing, pool_bound, pool_close
from workers.dbgate import DatabaseGate
from workers.deadletters import DeadLetterSweep
from workers.outcomes import Cancelled, Done, Errored, Failed, Lost, Outcome, attempt_run
from workers.poller import Poller
from workers.registry import Registered, registry_for
from workers.republish import Republisher
from workers.slots import Clock, Slot, Slots, SlotState
from workers.sqs import SQS_ERRORS, MessageQueue, QueueClient, ReceivedMessage
from workers.stats import WorkerStats
from workers.supervisor import Supervisor

__all__ = [
    "EXIT_STUCK",
    "STUCK_EXIT_AFTER",
    "Slot",
    "SlotState",
    "Worker",
    "WorkerStats",
    "effective_concurrency",
]

logger = logging.getLogger(__name__)

# A worker whose every slot is held by an abandoned handler for this long exits (code 3), so
# its process manager starts a fresh one: threads cannot be killed, processes can.
STUCK_EXIT_AFTER = 60.0
EXIT_STUCK = 3


def effective_concurrency(requested: int | None, kind: QueueKind) -> int:
    """The slots a worker of ``kind`` runs: what was asked for, never above the hard cap."""
    cap = worker_config.HARD_CONCURRENCY[kind]
    if requested is None:
        return cap
    if requested < 1:
        raise ValueError("concurrency must be at least 1")
    if requested > cap:
        logger.warning(
            "concurrency %s asked for, but %s workers run at most %s jobs; using %s",
            requested,
            kind,
            cap,
            cap,
        )
        return cap
    return requested


class Worker:
    """Runs jobs of one queue kind until :meth:`stop` (or SIGTERM under ``run_worker``)."""

    def __init__(
        self,
        kind: QueueKind | str,
        *,
        concurrency: int | None = None,
        config: QueueConfig | None = None,
        handlers: Mapping[str, Handler] | None = None,
        queue: MessageQueue | None = None,
        dlq: MessageQueue | None = None,
        max_receive_count: int | None = None,
        wait_seconds: int | None = None,
        grace: float | None = None,
        retry_delay: int | None = None,
        tick: float | None = None,
        dlq_sweep_interval: float | None = None,
        republish_interval: float | None = None,
        cancel_check_interval: float | None = None,
        stuck_exit_after: float = STUCK_EXIT_AFTER,
        clock: Clock = time.monotonic,
    ) -> None:
        self.kind = QueueKind(kind)
        self.clock = clock
        self.config = config or worker_config.queue_config(self.kind)
        self.concurrency = effective_concurrency(concurrency, self.kind)
        # The process's pool becomes the bound of workers/connections.py (worker processes;
        # a worker built inside another process, such as a test's, leaves that one's alone).
        self.db_pool_size = (
            pool_bound(self.concurrency + 1) if settings.PROCESS_ROLE == "worker" else None
        )
        self.registry: dict[str, Registered] = registry_for(self.kind, handlers)
        self.queue = queue or QueueClient(queue_url(self.kind), clock=clock)
        self.max_receive_count = max_receive_count or worker_config.max_receive_count(self.kind)
        self.wait_seconds = settings.SQS_WAIT_TIME_SECONDS if wait_seconds is None else wait_seconds
        self.grace = settings.WORKER_SHUTDOWN_GRACE if grace is None else grace
        self.retry_delay = settings.WORKER_RETRY_DELAY if retry_delay is None else retry_delay
        self.tick = settings.WORKER_TICK if tick is None else tick
        self.dlq_sweep_interval = (
            settings.WORKER_DLQ_SWEEP_INTERVAL if dlq_sweep_interval is None else dlq_sweep_interval
        )
        self.republish_interval = (
            settings.WORKER_REPUBLISH_INTERVAL if republish_interval is None else republish_interval
        )
        self.cancel_check_interval = (
            settings.WORKER_CANCEL_CHECK_INTERVAL
            if cancel_check_interval is None
            else cancel_check_interval
        )
        self.stuck_exit_after = stuck_exit_after
        self.dlq = dlq
        if self.dlq is None and self.dlq_sweep_interval > 0:
            url = worker_config.dlq_url(self.kind)
            self.dlq = QueueClient(url, clock=clock) if url else None
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{self.kind}:{uuid.uuid4().hex[:6]}"
        self.stats = WorkerStats()
        # A progress publish that finds the topic gone rebuilds it from the record first.
        self.throttle = ProgressThrottle(
            rebuild.publish_rebuilding,
            interval=settings.REALTIME_PROGRESS_INTERVAL,
            after_flush=close_all,
        )
        self.republisher = Republisher(store.publish)

        self.slots = Slots(self.concurrency, clock=clock)
        # A claim or finish that meets a database error stops the receiving until it answers.
        self.database_gate = DatabaseGate(clock=clock)
        self._stopping = threading.Event()
        self._stop_at = math.inf
        self._grace_deadline = math.inf
        self._thread_numbers = itertools.count(1)
        self._exit_code = 0
        self.poller = Poller(
            queue=self.queue,
            slots=self.slots,
            stopping=self._stopping,
            start=self._start,
            on_stuck=self._exit_stuck,
            stats=self.stats,
            visibility_timeout=self.config.visibility_timeout,
            wait_seconds=self.wait_seconds,
            stuck_exit_after=self.stuck_exit_after,
            gate=self.database_gate,
        )
        sweep = None
        if self.dlq is not None and self.dlq_sweep_interval > 0:
            sweep = DeadLetterSweep(
                dlq=self.dlq, kind=self.kind, on_publish_failure=self.republisher.add, clock=clock
            )
        self.supervisor = Supervisor(
            kind=self.kind,
            config=self.config,
            slots=self.slots,
            queue=self.queue,
            stats=self.stats,
            republisher=self.republisher,
            tick=self.tick,
            republish_interval=self.republish_interval,
            cancel_check_interval=self.cancel_check_interval,
            sweep=sweep,
            sweep_interval=self.dlq_sweep_interval,
            clock=clock,
            gate=self.database_gate,
        )
        for problem in self.config.problems():
            logger.warning("queue %s timing: %s", self.kind, problem)

    # --- control -----------------------------------------------------------------------------
    def stop(self, *, immediately: bool = False) -> None:
        """Stop polling; running jobs get the grace period (none if ``immediately``).

        Safe to call from a signal handler: it only sets flags.
        """
        now = self.clock()
        if not self._stopping.is_set():
            self._stop_at = now
            self._grace_deadline = now + self.grace
            self._stopping.set()
        if immediately:
            self._grace_deadline = now

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def running(self) -> int:
        return len(self.slots)

    def run(self) -> int:
        """Poll and run jobs until stopped; returns the process exit code."""
        logger.info(
            "worker %s started: queue=%s slots=%s visibility=%ss lease=%ss heartbeat=%ss "
            "max_runtime=%ss max_visibility=%ss max_receive_count=%s wait=%ss db_pool=%s",
            self.worker_id,
            self.queue.url,
            self.concurrency,
            self.config.visibility_timeout,
            self.config.lease_seconds,
            self.config.heartbeat_interval,
            self.config.max_runtime,
            self.config.max_visibility,
            self.max_receive_count,
            self.wait_seconds,
            self.db_pool_size,
        )
        self.supervisor.start()
        metrics.slots_opened(self.kind, self.concurrency)
        try:
            self.poller.run()
        finally:
            code = self.shutdown()
            metrics.slots_closed(self.kind, self.concurrency)
        return code

    def _exit_stuck(self) -> None:
        self._exit_code = EXIT_STUCK
        self.stop(immediately=True)

    def _start(self, message: ReceivedMessage) -> None:
        slot = self.slots.open(message, self.config)
        metrics.slot_taken(self.kind)
        self.stats.peak_running = self.slots.peak
        thread = threading.Thread(
            target=self.execute,
            args=(slot,),
            name=f"{self.kind}-job-{next(self._thread_numbers)}",
            daemon=True,
        )
        thread.start()

    # --- one job (a job thread) -------------------------------------------------------------
    def execute(self, slot: Slot) -> None:
        """The job thread: claim, run, settle; the slot is freed whatever happens."""
        try:
            self._handle(slot)
        except Exception:
            logger.exception("worker slot failed unexpectedly")
            self._give_back(slot)
        finally:
            close_all()
            self.slots.free(slot)
            metrics.slot_freed(self.kind)

    def _give_back(self, slot: Slot) -> None:
        """After an unexpected error: end this attempt's lease and make the message visible
        after the retry delay, rather than leave it invisible for its whole visibility
        timeout behind a live lease."""
        if not self.slots.give_up(slot):
            return  # lost or timed out: someone else owns the job and the message now
        if slot.job is not None:
            try:
                services.job_lease_release(
                    slot.job.tenant_id, job_id=slot.job.job_id, attempt=slot.job.attempt
                )
            except DatabaseError:
                logger.exception("lease release failed; the next attempt waits for it to end")
        self.queue.release(slot.message, self.retry_delay)

    def _handle(self, slot: Slot) -> None:
        received = slot.message
        try:
            message = JobMessage.decode(received.body)
        except ValueError:
            logger.error("dropping message %s: it names no job", received.message_id)
            self.queue.delete(received)
            return
        set_guid(message.request_id or message.job_id.hex)
        try:
            with logcontext.job_scope(
                job_id=message.job_id,
                tenant_id=message.tenant_id,
                kind=self.kind,
                started=received.received_at,
            ) as log_context:
                run = self._claim(slot, message)
                if run is not None:
                    log_context.attempt = run.attempt
                    self.slots.start_running(slot, run, self.config)
                    logger.info(
                        "job started type=%s receive=%s", run.job_type, received.receive_count
                    )
                    outcome = attempt_run(
                        run=run,
                        registered=self.registry.get(run.job_type),
                        throttle=self.throttle,
                        lost=slot.lost,
                        cancelled=slot.cancelled,
                    )
                    self.settle(slot, outcome)
        finally:
            clear_guid()

    def _claim(self, slot: Slot, message: JobMessage) -> JobRun | None:
        received = slot.message
        try:
            with closing():  # no connection is held while the job runs
                claim = services.job_claim(
                    message.tenant_id,
                    job_id=message.job_id,
                    lease_owner=self.worker_id,
                    lease_seconds=self.config.lease_seconds,
                    on_publish_failure=self.republisher.add,
                )
        except DatabaseError:
            logger.exception("claim failed; the message is retried in %s s", self.retry_delay)
            self.database_gate.failed()
            self.queue.release(received, self.retry_delay)
            return None
        if claim.result is ClaimResult.MISSING:
            logger.error("no such job in this tenant; dropping its message")
            self.queue.delete(received)
            return None
        if claim.result is ClaimResult.FINISHED:
            logger.info("job already finished; dropping a duplicate delivery")
            self.stats.duplicates += 1
            metrics.job_settled(self.kind, "duplicate")
            self.queue.delete(received)
            return None
        if claim.result is ClaimResult.BUSY:
            # Left alone: it becomes visible again when its visibility timeout ends.
            logger.info(
                "another attempt holds the job for %.0f s more; leaving the message",
                claim.lease_remaining,
            )
            return None
        claimed = claim.job
        if claimed is None:
            raise RuntimeError("a CLAIMED claim carries its job")
        return JobRun(
            job_id=claimed.job_id,
            tenant_id=claimed.tenant_id,
            job_type=claimed.job_type,
            payload=claimed.payload,
            attempt=claimed.attempt,
            owner_id=claimed.owner_id,
            kind=self.kind,
            receive_count=received.receive_count,
        )

    # --- settling an outcome ----------------------------------------------------------------
    def settle(self, slot: Slot, outcome: Outcome) -> None:
        """Record what the attempt came to, unless the slot was abandoned meanwhile."""
        if not self.slots.start_finishing(slot):
            logger.warning("attempt abandoned (%s); its outcome is discarded", slot.abandon_reason)
            return
        run = slot.run
        match outcome:
            case Done(result=result):
                self._finish(slot, run, JobStatus.DONE, result=result)
            case Failed(error=error):
                self._finish(slot, run, JobStatus.FAILED, error=error)
            case Cancelled():
                self._finish(slot, run, JobStatus.CANCELLED)
            case Errored() | Lost():
                if slot.message.receive_count >= self.max_receive_count:
                    self._give_up(slot, run)
                else:
                    self._retry(slot, run)
            case _:
                assert_never(outcome)

    def _give_up(self, slot: Slot, run: JobRun) -> None:
        # The last receive SQS allows: fail the job now; the message is let go and the next
        # receive moves it to the dead-letter queue, whose sweep deletes it (the job is FAILED).
        logger.error(
            "receive %s of %s failed; the job fails",
            slot.message.receive_count,
            self.max_receive_count,
        )
        error = f"The job failed {slot.message.receive_count} times and was given up."
        if self._finish(slot, run, JobStatus.FAILED, error=error, delete=False):
            self.queue.release(slot.message, 0)

    def _retry(self, slot: Slot, run: JobRun) -> None:
        delay = self.retry_delay * slot.message.receive_count
        try:
            with closing():
                services.job_lease_release(run.tenant_id, job_id=run.job_id, attempt=run.attempt)
        except DatabaseError:
            logger.exception("lease release failed; the retry waits for the lease to end")
            delay = max(delay, math.ceil(slot.lease_until - self.clock()) + 1)
        self.queue.release(slot.message, delay)
        self.stats.retried += 1
        metrics.job_settled(self.kind, "retried")
        logger.warning("attempt failed; the job is retried in %s s", delay)

    def _finish(
        self,
        slot: Slot,
        run: JobRun,
        status: JobStatus,
        *,
        result: Any = None,
        error: str = "",
        delete: bool = True,
    ) -> bool:
        try:
            with closing():
                finished = services.job_finish(
                    run.tenant_id,
                    job_id=run.job_id,
                    attempt=run.attempt,
                    status=status,
                    result=result,
                    error=error,
                    on_publish_failure=self.republisher.add,
                )
        except DatabaseError:
            logger.exception("the outcome could not be recorded; the job is retried")
            self.database_gate.failed()
            lease_left = max(0, math.ceil(slot.lease_until - self.clock()))
            self.queue.release(slot.message, lease_left + 1)
            return False
        if not finished:
            # Another attempt holds the job, or it has finished: this one changes nothing,
            # not even the message (its receipt handle may now control someone else's).
            self.stats.lost += 1
            metrics.job_settled(self.kind, "lost")
            return False
        if status == JobStatus.DONE:
            self.stats.done += 1
        elif status == JobStatus.CANCELLED:
            self.stats.cancelled += 1
        else:
            self.stats.failed += 1
        metrics.job_settled(self.kind, status.lower(), self.clock() - slot.started)
        logger.info("job %s in %.3f s", status, self.clock() - slot.started)
        if delete:
            self.queue.delete(slot.message)
        return True

    # --- shutdown ----------------------------------------------------------------------------
    def shutdown(self) -> int:
        """Wait out the grace period, release what still runs, stop the supervisor."""
        logger.info(
            "stopping: waiting up to %.1f s for %s running job(s)", self.grace, self.running()
        )
        leftovers = self.slots.wait_until_settled(self._grace_deadline)
        # Stop the supervisor first: releasing from this thread keeps connections <= slots + 1.
        self.supervisor.stop()
        for slot in leftovers:
            self._release(slot)
        self.throttle.close()
        if len(self.republisher):
            self.republisher.retry()
        close_all()
        if settings.PROCESS_ROLE == "worker":
            pool_close()
        logger.info(
            "worker stopped: done=%s failed=%s cancelled=%s retried=%s released=%s lost=%s "
            "timed_out=%s",
            self.stats.done,
            self.stats.failed,
            self.stats.cancelled,
            self.stats.retried,
            self.stats.released,
            self.stats.lost,
            self.stats.timed_out,
        )
        return self._exit_code

    def _release(self, slot: Slot) -> None:
        """Give a running job back: lease ended now, message visible now (shutdown)."""
        if not self.slots.abandon(slot, "released at shutdown"):
            return
        run = slot.run
        with slot.log_scope():
            try:
                with closing():
                    services.job_lease_release(
                        run.tenant_id, job_id=run.job_id, attempt=run.attempt
                    )
            except DatabaseError:
                logger.exception("lease release failed; the next attempt waits for it to end")
            if self.queue.release(slot.message, 0):
                self.stats.released += 1
                metrics.job_settled(self.kind, "released")
            logger.warning("released a running job at shutdown")


# --- starting while SQS is away ---------------------------------------------------------------
START_BACKOFF_FIRST = 1.0


def build_when_queue_answers(
    build: Callable[[], Worker],
    *,
    kind: QueueKind | str,
    stopped: threading.Event,
    first_delay: float = START_BACKOFF_FIRST,
    max_delay: float | None = None,
) -> Worker | None:
    """``build()`` the worker, retrying while SQS cannot be reached; None if ``stopped`` was
    set meanwhile (a signal during the wait).

    Building a worker looks its queue up (URL, redrive policy, dead-letter queue): a worker
    started during an SQS outage, or before its endpoint answers, would otherwise exit with a
    traceback and depend on a process manager to try again. It waits ``first_delay``, then
    twice as long each time up to ``max_delay`` (``WORKER_START_BACKOFF_MAX``), with ±20 %
    jitter so a fleet restarted together does not retry in step, and logs every failure.
    """
    ceiling = settings.WORKER_START_BACKOFF_MAX if max_delay is None else max_delay
    delay, failures, started = first_delay, 0, time.monotonic()
    while not stopped.is_set():
        try:
            worker = build()
        except SQS_ERRORS as exc:
            failures += 1
            wait = min(delay, ceiling) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter only
            logger.warning(
                "worker not started: the %s queue cannot be reached (%s: %s); retrying in "
                "%.1f s (failure %s)",
                kind,
                type(exc).__name__,
                exc,
                wait,
                failures,
            )
            stopped.wait(wait)
            delay = min(delay * 2, ceiling)
            continue
        if failures:
            logger.info(
                "the %s queue answers after %s failed lookup(s) over %.1f s; worker starting",
                kind,
                failures,
                time.monotonic() - started,
            )
        return worker
    logger.info("worker start abandoned: stopped while waiting for the %s queue", kind)
    return None
