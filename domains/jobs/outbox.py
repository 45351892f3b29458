"""The outbox: a job's queue message and its terminal state, each recorded once it went out.

The job row is the outbox (docs/adr/0011-the-job-row-is-the-outbox.md). Creating a job
commits the row with ``message_sent_at`` NULL; the send happens after the commit and, when it
succeeds, sets it. Finishing a job commits the row with ``terminal_published_at`` NULL; the
publish after the commit sets it when Redis took the state. What a crash, an unreachable queue
or an unreachable Redis left NULL, the relay (``manage.py relay_outbox``) sends or publishes
later: at least once. Both are idempotent by job id, so "at least once" is harmless: a second
message for a claimed or finished job is left (BUSY) or dropped (FINISHED) by the worker's
claim, and a terminal topic never changes again in Redis.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.db import DatabaseError, transaction

from domains.jobs import dispatch, repository
from domains.jobs.models import Job, JobStatus
from domains.jobs.types import job_type_get
from realtime import store
from realtime.keys import Topic
from realtime.state import Change, PublishResult
from realtime.store import PublishRetry

logger = logging.getLogger(__name__)

UNKNOWN_TYPE_ERROR = "The job type is not known to this deployment."


# --- the message ------------------------------------------------------------------------------
def job_message_dispatch(
    tenant_id: int, *, job_id: uuid.UUID, job_type: str, request_id: str = ""
) -> bool:
    """Send the job's message and record it; False (logged, never raised) if it did not go out.

    Runs after the row committed: a failure leaves ``message_sent_at`` NULL for the relay.
    A send whose record fails (the database went away) is sent again by the relay: harmless.
    """
    spec = job_type_get(job_type)
    if spec is None:
        logger.error("job of unknown type not sent tenant=%s job=%s", tenant_id, job_id)
        return False
    message = dispatch.JobMessage(job_id=job_id, tenant_id=tenant_id, request_id=request_id)
    try:
        dispatch.job_message_send(spec.kind, message)
    except (BotoCoreError, ClientError):
        logger.warning(
            "job message not sent, queue unavailable; the relay sends it tenant=%s job=%s",
            tenant_id,
            job_id,
            exc_info=True,
        )
        return False
    try:
        repository.job_message_sent_mark(tenant_id, job_id=job_id)
    except DatabaseError:
        logger.warning(
            "job message sent but not recorded; the relay may send it again tenant=%s job=%s",
            tenant_id,
            job_id,
            exc_info=True,
        )
    return True


@dataclass(frozen=True, slots=True)
class RelayReport:
    sent: int = 0
    failed: int = 0  # the queue did not answer: the batch stopped there
    abandoned: int = 0  # unknown job types, marked FAILED

    def __bool__(self) -> bool:
        return bool(self.sent or self.failed or self.abandoned)


def unsent_messages_relay(*, limit: int, older_than: float) -> RelayReport:
    """Send the messages of PENDING jobs committed at least ``older_than`` seconds ago whose
    send is not recorded, oldest first; stops at the first send the queue refuses.

    The rows stay locked (SKIP LOCKED) from the read to the record of their send, so relays
    running at once never send the same row in the same pass. ``older_than`` leaves the
    creating request time to send its own message (a race only costs a duplicate).
    """
    sent = abandoned = 0
    with transaction.atomic():
        for job in repository.jobs_unsent_lock(limit=limit, older_than=older_than):
            spec = job_type_get(job.job_type)
            if spec is None:
                _job_fail_unknown_type(job)
                abandoned += 1
                continue
            message = dispatch.JobMessage(job_id=job.job_id, tenant_id=job.tenant_id)
            try:
                dispatch.job_message_send(spec.kind, message)
            except (BotoCoreError, ClientError):
                logger.warning(
                    "relay: queue unavailable; %s sent, the rest waits tenant=%s job=%s",
                    sent,
                    job.tenant_id,
                    job.job_id,
                    exc_info=True,
                )
                return RelayReport(sent=sent, failed=1, abandoned=abandoned)
            repository.job_message_sent_mark(job.tenant_id, job_id=job.job_id)
            sent += 1
            logger.info("relay: job message sent tenant=%s job=%s", job.tenant_id, job.job_id)
    return RelayReport(sent=sent, abandoned=abandoned)


def _job_fail_unknown_type(job: Job) -> None:
    """A job whose type this code no longer knows can never run: FAILED, not retried forever."""
    locked = repository.job_lock(job.tenant_id, job_id=job.job_id)
    if locked is None or locked.job.status != JobStatus.PENDING:
        return
    failed = locked.job
    failed.status = JobStatus.FAILED
    failed.error = UNKNOWN_TYPE_ERROR
    failed.finished_at = locked.now
    repository.job_save(failed.tenant_id, job=failed, fields=["status", "error", "finished_at"])
    logger.error("relay: job of unknown type failed tenant=%s job=%s", job.tenant_id, job.job_id)
    terminal_publish_on_commit(failed.tenant_id, failed, None)


# --- the terminal state -----------------------------------------------------------------------
def terminal_change(job: Job, result: Any) -> Change:
    return Change(
        status=job.status,
        attempt=job.attempt,
        owner_id=job.created_by_id,
        job_type=job.job_type,
        error=job.error or None,
        result=result if job.status == JobStatus.DONE else None,
        cancel_requested=job.cancel_requested,
    )


def terminal_publish_on_commit(
    tenant_id: int,
    job: Job,
    result: Any,
    *,
    on_failure: PublishRetry | None = None,
    on_published: Callable[[PublishResult], None] | None = None,
) -> None:
    """Publish the job's terminal state after the commit and record that Redis took it.

    Until the record is written the relay republishes the state: a publish lost to a Redis
    outage, or to a process that died right after the commit, is never lost for good.
    """
    job_id = job.job_id

    def published(answer: PublishResult) -> None:
        try:
            repository.job_terminal_published_mark(tenant_id, job_id=job_id)
        except DatabaseError:
            logger.warning(
                "terminal state published but not recorded tenant=%s job=%s",
                tenant_id,
                job_id,
                exc_info=True,
            )
        if on_published is not None:
            on_published(answer)

    store.publish_on_commit(
        tenant_id,
        Topic.job(job_id),
        terminal_change(job, result),
        on_failure=on_failure,
        on_success=published,
    )


def unpublished_terminals_republish(*, limit: int, older_than: float) -> int:
    """Republish the terminal states of jobs finished at least ``older_than`` seconds ago that
    are not recorded as published, oldest first; stops at the first Redis failure. Returns how
    many Redis took.

    One short transaction per job (its row locked SKIP LOCKED), so a relay never holds locks
    while it waits on Redis.
    """
    published = 0
    failures: list[Topic] = []

    def failed(tenant_id: int, topic: Topic, change: Change) -> None:
        failures.append(topic)

    for tenant_id, job_id in repository.jobs_unpublished(limit=limit, older_than=older_than):
        with transaction.atomic():
            job = repository.job_unpublished_lock(tenant_id, job_id=job_id)
            if job is None:
                continue  # published meanwhile, or another relay has it
            result = (
                repository.job_result_data(tenant_id, job_id=job_id)
                if job.status == JobStatus.DONE
                else None
            )
            terminal_publish_on_commit(tenant_id, job, result, on_failure=failed)
        if failures:
            logger.warning("relay: Redis unavailable; %s terminal state(s) republished", published)
            break
        published += 1
        logger.info("relay: terminal state republished tenant=%s job=%s", tenant_id, job_id)
    return published


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    unsent: int  # job messages not recorded as sent
    unpublished: int  # terminal states not recorded as published


def outbox_backlog() -> OutboxBacklog:
    """What the relay still has to send, across tenants (its metric)."""
    unsent, unpublished = repository.outbox_backlog_counts()
    return OutboxBacklog(unsent=unsent, unpublished=unpublished)


# --- after Redis went back in time ------------------------------------------------------------
def rewound_terminals_restore(*, since: datetime, batch: int) -> int:
    """Restore the terminal states that a Redis gone back in time may have lost: every job
    recorded as published at or after ``since`` that Redis shows running again gets its
    terminal state from the record, at a new epoch (``store.restore_terminal``). Returns how
    many were restored; raises ``RealtimeUnavailable`` at the first Redis failure (the caller
    tries again from the start, so a pass cut short loses nothing).

    Jobs Redis shows terminal, or not at all, are left alone: the first are right, and for the
    second the client reads the record (a ``not_found``), which repairs Redis.
    """
    restored = 0
    after: tuple[datetime, int] | None = None
    while True:
        jobs = repository.jobs_published_since(since=since, after=after, limit=batch)
        for job in jobs:
            if store.restore_terminal(
                job.tenant_id, Topic.job(job.job_id), functools.partial(_recorded_terminal, job)
            ):
                restored += 1
                logger.info(
                    "relay: terminal state restored after a Redis rewind tenant=%s job=%s",
                    job.tenant_id,
                    job.job_id,
                )
        if len(jobs) < batch:
            return restored
        last = jobs[-1]
        after = (last.terminal_published_at or since, last.id)


def _recorded_terminal(job: Job) -> Change:
    result = (
        repository.job_result_data(job.tenant_id, job_id=job.job_id)
        if job.status == JobStatus.DONE
        else None
    )
    return terminal_change(job, result)
