"""The worker runner: long polling, capped slots, leases, heartbeats, time limits, shutdown.

One process serves one queue kind. Threads:

- the **poller** (the thread calling :meth:`Worker.run`, the main thread under ``run_worker``)
  long-polls SQS for at most as many messages as there are free slots, and starts one job
  thread per message. Nothing is prefetched: a received message is running a moment later.
- **job threads**, at most ``concurrency`` at once: claim the row (short transaction), close
  the database connection, run the handler, then finish in a transaction that checks the
  attempt, publish after commit, delete the message.
- the **supervisor**: every ``tick`` it extends the visibility and the lease of running jobs
  (at half-intervals), fails jobs past their time limit, retries unpublished terminal states
  and looks into the dead-letter queue. It is the only thread besides job threads that uses
  the database, so a worker holds at most ``concurrency + 1`` connections.

Correctness never rests on SQS: every transition is fenced in the database by the attempt
number (docs/adr/0004-worker-leases-and-attempt-fencing.md). SQS only decides *when* a job is
tried again. See docs/workers.md for the failure semantics.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from django import db
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
from workers.base import Handler, JobProgress, JobRun, LeaseLost, PermanentError
from workers.config import QueueConfig
from workers.registry import Registered, registry_for
from workers.republish import Republisher
from workers.sqs import SQS_ERRORS, QueueClient, ReceivedMessage, is_lost_handle

logger = logging.getLogger(__name__)

# A worker whose every slot is held by an abandoned handler for this long exits (code 3), so
# its process manager starts a fresh one: threads cannot be killed, processes can.
STUCK_EXIT_AFTER = 60.0
EXIT_STUCK = 3


class SlotState(StrEnum):
    CLAIMING = "claiming"
    RUNNING = "running"
    FINISHING = "finishing"
    # Lease lost, time limit passed, or released at shutdown: the handler may still be
    # running, but nothing it does can change the job any more.
    ABANDONED = "abandoned"


@dataclass(eq=False)
class Slot:
    message: ReceivedMessage
    state: SlotState = SlotState.CLAIMING
    job: JobRun | None = None
    started: float = 0.0
    deadline: float = math.inf
    next_beat: float = math.inf
    visible_until: float = 0.0
    lease_until: float = 0.0
    abandoned_at: float = 0.0
    abandon_reason: str = ""
    heartbeats: int = 0
    lost: threading.Event = field(default_factory=threading.Event)


@dataclass
class WorkerStats:
    received: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    lost: int = 0
    timed_out: int = 0
    duplicates: int = 0
    heartbeats: int = 0
    peak_running: int = 0


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
        queue: QueueClient | None = None,
        dlq: QueueClient | None = None,
        max_receive_count: int | None = None,
        wait_seconds: int | None = None,
        grace: float | None = None,
        retry_delay: int | None = None,
        tick: float | None = None,
        dlq_sweep_interval: float | None = None,
        republish_interval: float | None = None,
        stuck_exit_after: float = STUCK_EXIT_AFTER,
    ) -> None:
        self.kind = QueueKind(kind)
        self.config = config or worker_config.queue_config(self.kind)
        self.concurrency = effective_concurrency(concurrency, self.kind)
        self.registry: dict[str, Registered] = registry_for(self.kind, handlers)
        self.queue = queue or QueueClient(queue_url(self.kind))
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
        self.stuck_exit_after = stuck_exit_after
        self.dlq = dlq
        if self.dlq is None and self.dlq_sweep_interval > 0:
            url = worker_config.dlq_url(self.kind)
            self.dlq = QueueClient(url) if url else None
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{self.kind}:{uuid.uuid4().hex[:6]}"
        self.stats = WorkerStats()
        # A progress publish that finds the topic gone rebuilds it from the record first.
        self.throttle = ProgressThrottle(
            rebuild.publish_rebuilding, interval=settings.REALTIME_PROGRESS_INTERVAL
        )
        self.republisher = Republisher(store.publish)

        self._cond = threading.Condition()
        self._slots: set[Slot] = set()
        self._stopping = threading.Event()
        self._stop_at = math.inf
        self._grace_deadline = math.inf
        self._supervisor_done = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._thread_numbers = itertools.count(1)
        self._exit_code = 0
        for problem in self.config.problems():
            logger.warning("queue %s timing: %s", self.kind, problem)

    # --- control -----------------------------------------------------------------------------
    def stop(self, *, immediately: bool = False) -> None:
        """Stop polling; running jobs get the grace period (none if ``immediately``).

        Safe to call from a signal handler: it only sets flags.
        """
        now = time.monotonic()
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
        with self._cond:
            return len(self._slots)

    def run(self) -> int:
        """Poll and run jobs until stopped; returns the process exit code."""
        logger.info(
            "worker %s started: queue=%s slots=%s visibility=%ss lease=%ss heartbeat=%ss "
            "max_runtime=%ss max_visibility=%ss max_receive_count=%s wait=%ss",
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
        )
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"{self.kind}-supervisor", daemon=True
        )
        self._supervisor.start()
        try:
            self._poll()
        finally:
            code = self._shutdown()
        return code

    # --- polling -----------------------------------------------------------------------------
    def _poll(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            free = self._wait_for_free_slots()
            if free == 0:
                continue
            try:
                messages = self.queue.receive(
                    max_messages=free,
                    wait_seconds=self.wait_seconds,
                    visibility_timeout=self.config.visibility_timeout,
                )
            except SQS_ERRORS as exc:
                backoff = min(30.0, max(1.0, backoff * 2))
                logger.warning("receive failed, retrying in %.0f s: %s", backoff, exc)
                self._stopping.wait(backoff)
                continue
            backoff = 0.0
            self.stats.received += len(messages)
            for index, message in enumerate(messages):
                if self._stopping.is_set():
                    # Received after the stop: make them visible again at once (kombu #1819).
                    rest = messages[index:]
                    released = self.queue.release_many(rest)
                    self.stats.released += released
                    logger.info("released %s of %s unstarted message(s)", released, len(rest))
                    break
                self._start(message)

    def _wait_for_free_slots(self) -> int:
        with self._cond:
            while not self._stopping.is_set():
                free = self.concurrency - len(self._slots)
                if free > 0:
                    return free
                if self._stuck():
                    logger.error(
                        "every slot has been held by an abandoned handler for %.0f s; exiting "
                        "so that a fresh process takes over",
                        self.stuck_exit_after,
                    )
                    self._exit_code = EXIT_STUCK
                    self.stop(immediately=True)
                    break
                self._cond.wait(0.5)
        return 0

    def _stuck(self) -> bool:
        now = time.monotonic()
        return bool(self._slots) and all(
            slot.state is SlotState.ABANDONED and now - slot.abandoned_at > self.stuck_exit_after
            for slot in self._slots
        )

    def _start(self, message: ReceivedMessage) -> None:
        slot = Slot(
            message=message,
            visible_until=message.received_at + self.config.visibility_timeout,
            lease_until=message.received_at + self.config.lease_seconds,
        )
        thread = threading.Thread(
            target=self._execute,
            args=(slot,),
            name=f"{self.kind}-job-{next(self._thread_numbers)}",
            daemon=True,
        )
        with self._cond:
            self._slots.add(slot)
            self.stats.peak_running = max(self.stats.peak_running, len(self._slots))
        thread.start()

    # --- one job -----------------------------------------------------------------------------
    def _execute(self, slot: Slot) -> None:
        try:
            self._handle(slot)
        except Exception:
            logger.exception("worker slot failed unexpectedly")
        finally:
            db.connections.close_all()
            with self._cond:
                self._slots.discard(slot)
                self._cond.notify_all()

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
                    self._run(slot, run)
        finally:
            clear_guid()

    def _claim(self, slot: Slot, message: JobMessage) -> JobRun | None:
        received = slot.message
        try:
            claim = services.job_claim(
                message.tenant_id,
                job_id=message.job_id,
                lease_owner=self.worker_id,
                lease_seconds=self.config.lease_seconds,
                on_publish_failure=self.republisher.add,
            )
        except DatabaseError:
            logger.exception("claim failed; the message is retried in %s s", self.retry_delay)
            self.queue.release(received, self.retry_delay)
            return None
        finally:
            db.connection.close()  # no connection is held while the job runs
        if claim.result is ClaimResult.MISSING:
            logger.error("no such job in this tenant; dropping its message")
            self.queue.delete(received)
            return None
        if claim.result is ClaimResult.FINISHED:
            logger.info("job already finished; dropping a duplicate delivery")
            self.stats.duplicates += 1
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

    def _run(self, slot: Slot, run: JobRun) -> None:
        now = time.monotonic()
        with self._cond:
            slot.job = run
            slot.state = SlotState.RUNNING
            slot.started = now
            slot.deadline = now + self.config.max_runtime
            slot.next_beat = slot.message.received_at + self.config.heartbeat_interval
        logger.info("job started type=%s receive=%s", run.job_type, slot.message.receive_count)
        outcome: tuple[str, Any]
        try:
            registered = self.registry.get(run.job_type)
            if registered is None:
                raise PermanentError(f"No {self.kind} worker runs jobs of type {run.job_type}.")
            serializer = registered.spec.payload(data=run.payload)
            if not serializer.is_valid():
                logger.error("stored payload is invalid: %s", serializer.errors)
                raise PermanentError("The job's payload is not valid.")
            run = replace(run, payload=dict(serializer.validated_data))
            progress = JobProgress(job=run, throttle=self.throttle, lost=slot.lost)
            result = registered.handler.run(run, progress)
            _check_result(result)
        except LeaseLost:
            outcome = ("lost", None)
        except PermanentError as exc:
            outcome = ("failed", str(exc) or "The job failed.")
        except Exception as exc:
            logger.exception("attempt failed")
            outcome = ("error", exc)
        else:
            outcome = ("done", result)
        finally:
            self.throttle.forget(run.tenant_id, run.topic)
        self._settle(slot, run, outcome)

    def _settle(self, slot: Slot, run: JobRun, outcome: tuple[str, Any]) -> None:
        with self._cond:
            if slot.state is not SlotState.RUNNING:
                logger.warning(
                    "attempt abandoned (%s); its outcome is discarded", slot.abandon_reason
                )
                return
            slot.state = SlotState.FINISHING
        kind, value = outcome
        if kind == "done":
            self._finish(slot, run, JobStatus.DONE, result=value)
        elif kind == "failed":
            self._finish(slot, run, JobStatus.FAILED, error=value)
        elif slot.message.receive_count >= self.max_receive_count:
            # The last receive SQS allows: fail the job now; the message is let go and the
            # next receive moves it to the dead-letter queue, where operators see it.
            logger.error(
                "receive %s of %s failed; the job fails",
                slot.message.receive_count,
                self.max_receive_count,
            )
            error = f"The job failed {slot.message.receive_count} times and was given up."
            if self._finish(slot, run, JobStatus.FAILED, error=error, delete=False):
                self.queue.release(slot.message, 0)
        else:
            self._retry(slot, run)

    def _retry(self, slot: Slot, run: JobRun) -> None:
        delay = self.retry_delay * slot.message.receive_count
        try:
            services.job_lease_release(run.tenant_id, job_id=run.job_id, attempt=run.attempt)
        except DatabaseError:
            logger.exception("lease release failed; the retry waits for the lease to end")
            delay = max(delay, math.ceil(slot.lease_until - time.monotonic()) + 1)
        finally:
            db.connection.close()
        self.queue.release(slot.message, delay)
        self.stats.retried += 1
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
            lease_left = max(0, math.ceil(slot.lease_until - time.monotonic()))
            self.queue.release(slot.message, lease_left + 1)
            return False
        finally:
            db.connection.close()
        if not finished:
            # Another attempt holds the job, or it has finished: this one changes nothing,
            # not even the message (its receipt handle may now control someone else's).
            self.stats.lost += 1
            return False
        if status == JobStatus.DONE:
            self.stats.done += 1
        else:
            self.stats.failed += 1
        logger.info("job %s in %.3f s", status, time.monotonic() - slot.started)
        if delete:
            self.queue.delete(slot.message)
        return True

    # --- supervisor: heartbeats, time limits, republish, dead letters ---------------------------
    def _supervise(self) -> None:
        next_republish = next_sweep = time.monotonic()
        while not self._supervisor_done.wait(self.tick):
            try:
                now = time.monotonic()
                with self._cond:
                    running = [s for s in self._slots if s.state is SlotState.RUNNING]
                for slot in running:
                    if now >= slot.deadline:
                        self._time_out(slot)
                    elif now >= slot.next_beat:
                        self._heartbeat(slot)
                if len(self.republisher) and now >= next_republish:
                    next_republish = now + self.republish_interval
                    self.republisher.retry()
                if self.dlq is not None and self.dlq_sweep_interval > 0 and now >= next_sweep:
                    next_sweep = now + self.dlq_sweep_interval
                    self._sweep_dead_letters()
            except Exception:
                logger.exception("supervisor pass failed")
            finally:
                db.connection.close()

    def _scope(self, slot: Slot) -> AbstractContextManager[Any]:
        run = slot.job
        if run is None:
            return nullcontext()
        return logcontext.job_scope(
            job_id=run.job_id,
            tenant_id=run.tenant_id,
            kind=self.kind,
            attempt=run.attempt,
            started=slot.message.received_at,
        )

    def _heartbeat(self, slot: Slot) -> None:
        run = _job_of(slot)
        config = self.config
        now = time.monotonic()
        with self._scope(slot):
            room = config.max_visibility - (now - slot.message.received_at)
            extension = int(min(config.visibility_timeout, room))
            lease = extension - config.lease_margin
            if lease < 1:
                # At the kind's visibility cap: the time limit ends the job before it reappears.
                logger.info("visibility is at its cap of %s s; not extended", config.max_visibility)
                slot.next_beat = math.inf
                return
            try:
                held = services.job_lease_extend(
                    run.tenant_id, job_id=run.job_id, attempt=run.attempt, lease_seconds=lease
                )
            except DatabaseError as exc:
                if now + self.tick >= slot.lease_until:
                    self._lose(slot, f"lease could not be extended: {exc}", release_lease=False)
                else:
                    logger.warning("lease extension failed, retrying: %s", exc)
                    slot.next_beat = now + 1
                return
            if not held:
                self._lose(slot, "another attempt took the job over", release_lease=False)
                return
            slot.lease_until = now + lease
            try:
                self.queue.extend(slot.message, extension)
            except SQS_ERRORS as exc:
                if is_lost_handle(exc) or now + self.tick >= slot.visible_until:
                    self._lose(slot, f"visibility could not be extended: {exc}", release_lease=True)
                else:
                    logger.warning("visibility extension failed, retrying: %s", exc)
                    slot.next_beat = now + 1
                return
            slot.visible_until = now + extension
            slot.next_beat = now + config.heartbeat_interval
            slot.heartbeats += 1
            self.stats.heartbeats += 1
            logger.debug("heartbeat: visible %s s, lease %s s", extension, lease)

    def _abandon(self, slot: Slot, reason: str) -> bool:
        with self._cond:
            if slot.state is not SlotState.RUNNING:
                return False
            slot.state = SlotState.ABANDONED
            slot.abandon_reason = reason
            slot.abandoned_at = time.monotonic()
            slot.lost.set()
            return True

    def _lose(self, slot: Slot, reason: str, *, release_lease: bool) -> None:
        if not self._abandon(slot, reason):
            return
        run = _job_of(slot)
        self.stats.lost += 1
        logger.warning("lease lost (%s); the attempt stops", reason)
        if release_lease:
            try:
                services.job_lease_release(run.tenant_id, job_id=run.job_id, attempt=run.attempt)
            except DatabaseError:
                logger.exception("lease release failed; the next attempt waits for it to end")

    def _time_out(self, slot: Slot) -> None:
        if not self._abandon(slot, "time limit exceeded"):
            return
        run = _job_of(slot)
        with self._scope(slot):
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
                self.queue.delete(slot.message)

    def _sweep_dead_letters(self) -> None:
        """Fail jobs whose message reached the dead-letter queue while they were unfinished
        (a worker that crashed on the last receive). Messages stay in the DLQ for operators."""
        if self.dlq is None:
            return
        try:
            messages = self.dlq.receive(max_messages=10, wait_seconds=0, visibility_timeout=30)
        except SQS_ERRORS as exc:
            logger.warning("dead-letter queue not readable: %s", exc)
            return
        for received in messages:
            try:
                message = JobMessage.decode(received.body)
            except ValueError:
                continue
            with logcontext.job_scope(
                job_id=message.job_id, tenant_id=message.tenant_id, kind=self.kind
            ):
                try:
                    failed = services.job_fail_dead_lettered(
                        message.tenant_id,
                        job_id=message.job_id,
                        on_publish_failure=self.republisher.add,
                    )
                except DatabaseError:
                    logger.exception("dead-lettered job not updated")
                    continue
                if failed:
                    self.stats.failed += 1
                    logger.error("job failed: its message reached the dead-letter queue")
        if messages:
            self.dlq.release_many(messages)

    # --- shutdown ----------------------------------------------------------------------------
    def _shutdown(self) -> int:
        logger.info(
            "stopping: waiting up to %.1f s for %s running job(s)", self.grace, self.running()
        )
        with self._cond:
            while any(s.state is not SlotState.ABANDONED for s in self._slots):
                remaining = self._grace_deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(0.2, remaining))
            leftovers = [s for s in self._slots if s.state is SlotState.RUNNING]
        # Stop the supervisor first: releasing from this thread keeps connections <= slots + 1.
        self._supervisor_done.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
        for slot in leftovers:
            self._release(slot)
        self.throttle.close()
        if len(self.republisher):
            self.republisher.retry()
        db.connections.close_all()
        logger.info(
            "worker stopped: done=%s failed=%s retried=%s released=%s lost=%s timed_out=%s",
            self.stats.done,
            self.stats.failed,
            self.stats.retried,
            self.stats.released,
            self.stats.lost,
            self.stats.timed_out,
        )
        return self._exit_code

    def _release(self, slot: Slot) -> None:
        """Give a running job back: lease ended now, message visible now (shutdown)."""
        if not self._abandon(slot, "released at shutdown"):
            return
        run = _job_of(slot)
        with self._scope(slot):
            try:
                services.job_lease_release(run.tenant_id, job_id=run.job_id, attempt=run.attempt)
            except DatabaseError:
                logger.exception("lease release failed; the next attempt waits for it to end")
            finally:
                db.connection.close()
            if self.queue.release(slot.message, 0):
                self.stats.released += 1
            logger.warning("released a running job at shutdown")


def _job_of(slot: Slot) -> JobRun:
    if slot.job is None:
        raise RuntimeError("slot has no claimed job")
    return slot.job


def _check_result(result: Any) -> None:
    if not isinstance(result, dict):
        raise PermanentError("The job produced no result.")
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise PermanentError("The job produced a result that cannot be stored.") from exc
