"""Job services: creating jobs and every lifecycle transition a worker makes.

The database row is the record and the fence. Each transition is one short transaction on the
row, locked FOR UPDATE: claim (PROCESSING, attempt + 1, lease), lease extension, finish (DONE
with its result, FAILED, or CANCELLED). A finish names its attempt and is refused unless that
attempt still holds the job, so a worker that lost its lease can never overwrite the outcome
(docs/adr/0004-worker-leases-and-attempt-fencing.md). States are published to Redis only after
the transaction commits, through ``realtime.store.publish_on_commit`` (STYLE.md §3).

Cancel (PROTOCOL.md §2, §5): :func:`job_cancel` ends a PENDING job CANCELLED at once (a worker
that receives its message later drops it) and records ``cancel_requested`` on a running one,
whose worker sees it within a heartbeat and finishes the job CANCELLED through
:func:`job_finish`, the path every terminal state takes (the outbox, ADR 0011).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from domains.common.cursors import Cursor, Page, page_cut
from domains.common.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)
from domains.jobs import hooks, outbox, quotas, repository, uploads
from domains.jobs.models import TERMINAL_STATUSES, Job, JobStatus
from domains.jobs.types import EXCEL_IMPORT, JobType, job_type_get
from domains.students.xlsx import failures_workbook
from realtime import store
from realtime.identity import Caller, Role, sees_topic, visible_owner
from realtime.keys import Topic
from realtime.state import Change, PublishResult
from realtime.store import PublishRetry

logger = logging.getLogger(__name__)

TERMINAL = frozenset(TERMINAL_STATUSES)
ERROR_MAX_LENGTH = 2000


# --- reading --------------------------------------------------------------------------------
def job_get_for_caller(tenant_id: int, *, job_id: uuid.UUID, caller: Caller) -> Job:
    """The job record if the caller may see it; otherwise NotFound, as if it did not exist."""
    job = repository.job_for_detail(tenant_id, job_id=job_id)
    if job is None or not sees_topic(caller, owner_id=job.created_by_id):
        raise NotFound()
    return job


def job_has_failures(job: Job) -> bool:
    """An Excel import that finished with failed rows in its stored result."""
    if job.job_type != EXCEL_IMPORT or job.status != JobStatus.DONE:
        return False
    result = getattr(job, "result", None)
    data = result.data if result is not None else None
    return isinstance(data, dict) and bool(data.get("failed_rows"))


def job_failures_workbook(job: Job) -> bytes:
    """The .xlsx of an Excel import's failed rows; NotFound for any other job or none failed."""
    if not job_has_failures(job):
        raise NotFound()
    return failures_workbook(job.result.data)


def job_state_repair(tenant_id: int, *, job: Job) -> bool:
    """Make Redis agree with the record a caller just read; True when something was published.

    Read repair: a topic Redis no longer holds (evicted, flushed, expired) is rebuilt from the
    record at a new epoch, terminal states and their result included, so a client whose
    progress poll answered 404 converges with this one call; a finished job Redis still shows
    running gets its terminal state (a terminal publish lost while Redis was away).
    """
    repaired = store.repair_from_record(
        tenant_id, Topic.job(job.job_id), lambda: _record_change(job)
    )
    if repaired:
        if job.status in TERMINAL and job.terminal_published_at is None:
            repository.job_terminal_published_mark(tenant_id, job_id=job.job_id)
        logger.info("live state repaired on read tenant=%s job=%s", tenant_id, job.job_id)
    return repaired


def job_state_from_record(tenant_id: int, topic: Topic) -> Change | None:
    """A job topic's whole live state as its record says (the jobs' ``realtime.rebuild`` hook).

    None when the tenant has no such job: a job id of another tenant never matches.
    """
    job = repository.job_for_detail(tenant_id, job_id=topic.id)
    return None if job is None else _record_change(job)


def jobs_list_for_caller(
    tenant_id: int,
    *,
    caller: Caller,
    statuses: tuple[str, ...] = (),
    job_type: str | None = None,
    after: Cursor | None = None,
    size: int,
) -> Page[repository.JobListRow]:
    """One page of the tenant's jobs, newest first: all of them for staff and admin, the
    caller's own for everyone else (the visibility rule of PROTOCOL.md §4, as a filter)."""
    if caller.tenant_id != tenant_id:
        raise PermissionDenied()
    rows = repository.jobs_page(
        tenant_id,
        owner_id=visible_owner(caller),
        statuses=statuses,
        job_type=job_type,
        after=after,
        limit=size + 1,
    )
    return page_cut(rows, size=size, key_of=lambda row: row.key)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    status: str
    attempt: int
    error: str


def job_outcome(tenant_id: int, *, job_id: uuid.UUID, lock: bool = False) -> JobOutcome | None:
    """A job's status, attempt and error, for a domain whose work a job runs (videos).

    With ``lock`` the row is locked FOR UPDATE in the caller's transaction, so a finish that
    checks ``attempt`` against it is fenced exactly like :func:`job_finish`.
    """
    if lock:
        locked = repository.job_lock(tenant_id, job_id=job_id)
        job = locked.job if locked is not None else None
    else:
        job = repository.job_for_detail(tenant_id, job_id=job_id)
    if job is None:
        return None
    return JobOutcome(status=job.status, attempt=job.attempt, error=job.error)


# --- creating -------------------------------------------------------------------------------
def job_create(
    tenant_id: int,
    *,
    caller: Caller,
    job_type: str,
    payload: Any,
    idempotency_key: str = "",
    request_id: str = "",
    upload: UploadedFile | None = None,
    internal: bool = False,
) -> Job:
    """Create a PENDING job, announce it in Redis and queue its message after the commit.

    The job is accepted once its row commits: a queue that does not answer leaves the message
    to the relay (the outbox, PROTOCOL.md §5), so only a database failure fails the request.

    A repeated request with the same ``idempotency_key`` (same user, same tenant) returns the
    first job and queues nothing; the same key with a different request is a conflict. The key
    is looked up first, so a replayed upload is compared, never parsed again.

    Types that accept a file take ``upload`` with ``payload`` as the form's other fields: the
    type checks both, the file goes to S3 under the new job's id, and the stored payload holds
    its key (never the file). A refused upload stores and queues nothing.

    Types that are not ``public`` are created only by their own app (``internal=True``).
    """
    if caller.tenant_id != tenant_id:
        raise PermissionDenied()
    spec = job_type_get(job_type)
    if spec is None or not (spec.public or internal):
        raise ValidationFailed(
            fields={"job_type": [_("Unknown job type: %(name)s.") % {"name": job_type[:64]}]}
        )
    if caller.role not in spec.roles:
        raise PermissionDenied(_("Your role may not start this kind of job."))
    if idempotency_key:
        existing = repository.job_by_idempotency_key(
            tenant_id, created_by_id=caller.user_id, idempotency_key=idempotency_key
        )
        if existing is not None:
            return _idempotent_replay(existing, spec=spec, payload=payload, upload=upload)
    quotas.job_quota_check(tenant_id, caller=caller)  # a replay above is never refused
    job_id = uuid.uuid4()
    file_data: bytes | None = None
    if spec.accepts_file:
        file_data, data = _upload_prepared(spec, payload, upload, tenant_id, job_id)
    elif upload is not None:
        raise ValidationFailed(fields={"file": [_("This job type does not accept a file.")]})
    else:
        data = _payload_validated(spec, payload)
        quotas.job_payload_admit(tenant_id, caller=caller, job_type=job_type, data=data)
    object_key = data.get("object_key", "") if file_data is not None else ""
    if file_data is not None:
        try:
            uploads.upload_put(object_key, file_data)
        except (BotoCoreError, ClientError) as exc:
            logger.exception("upload not stored tenant=%s key=%s", tenant_id, object_key)
            raise ServiceUnavailable(_("The file could not be stored. Try again shortly.")) from exc
    try:
        job = _job_row_insert(
            tenant_id,
            job_type=job_type,
            payload=data,
            created_by_id=caller.user_id,
            idempotency_key=idempotency_key,
            job_id=job_id,
        )
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        if object_key:
            uploads.upload_delete(object_key)
        existing = (
            repository.job_by_idempotency_key(
                tenant_id, created_by_id=caller.user_id, idempotency_key=idempotency_key
            )
            if idempotency_key
            else None
        )
        if existing is None:
            raise
        return _idempotent_replay(existing, spec=spec, payload=payload, upload=upload)
    except Exception:
        # Not inserted: no row references the file, so it has no use.
        if object_key:
            uploads.upload_delete(object_key)
        raise
    # The row is committed with its message not yet sent (the outbox): from here on nothing
    # fails the request or deletes the upload. After the commit (at once in autocommit; at the
    # outer commit if a caller wraps this in a transaction): the message, then PENDING into
    # Redis. The message goes first so that a worker starts without waiting for Redis (one
    # round trip, or a socket timeout while Redis hangs); a PENDING that lands after the
    # worker's PROCESSING is refused as an older attempt, and a lost one is harmless (the
    # worker's PROCESSING creates the topic). A message that did not go out is sent by the relay.
    transaction.on_commit(
        lambda: outbox.job_message_dispatch(
            tenant_id, job_id=job.job_id, job_type=job.job_type, request_id=request_id
        ),
        robust=True,
    )
    store.publish_on_commit(
        tenant_id,
        Topic.job(job.job_id),
        Change(
            status=JobStatus.PENDING,
            attempt=0,
            owner_id=job.created_by_id,
            job_type=job.job_type,
        ),
    )
    logger.info(
        "job created tenant=%s job=%s type=%s kind=%s",
        tenant_id,
        job.job_id,
        job_type,
        spec.kind,
    )
    return job


def _job_row_insert(tenant_id: int, **fields: Any) -> Job:
    """The job's INSERT, committed when it returns unless the caller holds a transaction.

    Outside a transaction it is its own autocommit statement: one round trip, where an
    ``atomic`` block would add a BEGIN and a COMMIT for the same single row. The row is still
    committed with ``message_sent_at`` NULL before the message is sent (ADR 0011). Inside the
    caller's transaction it runs under a savepoint, so that a duplicate idempotency key leaves
    that transaction usable for the lookup that follows.
    """
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            return repository.job_insert(tenant_id, **fields)
    return repository.job_insert(tenant_id, **fields)


def _payload_validated(spec: JobType, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationFailed(fields={"payload": [_("The payload must be a JSON object.")]})
    size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    limit = settings.JOB_PAYLOAD_MAX_BYTES
    if size > limit:
        raise ValidationFailed(
            fields={
                "payload": [
                    _("The payload is %(size)d bytes; at most %(limit)d are accepted.")
                    % {"size": size, "limit": limit}
                ]
            }
        )
    serializer = spec.payload(data=payload)
    if not serializer.is_valid():
        raise ValidationFailed(fields={"payload": _plain(serializer.errors)})
    return dict(serializer.validated_data)


def _upload_prepared(
    spec: JobType,
    fields: Any,
    upload: UploadedFile | None,
    tenant_id: int,
    job_id: uuid.UUID,
) -> tuple[bytes, dict[str, Any]]:
    if upload is None or spec.prepare_file is None:
        raise ValidationFailed(fields={"file": [_("Upload a file for this job type.")]})
    if not isinstance(fields, dict):
        raise ValidationFailed(fields={"payload": [_("The payload must be a JSON object.")]})
    prepared = spec.prepare_file(upload, fields)
    stored = {**prepared.payload, "object_key": uploads.import_object_key(tenant_id, job_id)}
    return prepared.data, _payload_validated(spec, stored)


def _plain(errors: Any) -> Any:
    if isinstance(errors, dict):
        return {str(key): _plain(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_plain(item) for item in errors]
    return str(errors)


def _idempotent_replay(
    job: Job, *, spec: JobType, payload: Any, upload: UploadedFile | None
) -> Job:
    """The first job of a key if this request is the same one; Conflict if it is not.

    JSON types compare validated payloads. File types ask ``replay_matches``: the file's
    checksum, its form fields and the initial password against the stored hash (audit F21).
    """
    if job.job_type != spec.name:
        same = False
    elif spec.accepts_file:
        same = (
            upload is not None
            and spec.replay_matches is not None
            and isinstance(payload, dict)
            and isinstance(job.payload, dict)
            and spec.replay_matches(job.payload, upload, payload)
        )
    else:
        same = job.payload == _payload_validated(spec, payload)
    if not same:
        raise Conflict(_("This Idempotency-Key was already used for a different request."))
    logger.info("idempotent replay tenant=%s job=%s", job.tenant_id, job.job_id)
    return job


# --- the worker's lifecycle transitions ---------------------------------------------------
class ClaimResult(StrEnum):
    CLAIMED = "claimed"  # this attempt runs the job
    FINISHED = "finished"  # already DONE/FAILED: drop the message
    BUSY = "busy"  # another attempt holds a live lease: leave the message
    MISSING = "missing"  # no such job in that tenant


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    job_id: uuid.UUID
    tenant_id: int
    job_type: str
    payload: dict[str, Any]
    attempt: int
    owner_id: int | None


@dataclass(frozen=True, slots=True)
class Claim:
    result: ClaimResult
    job: ClaimedJob | None = None
    lease_remaining: float = 0.0  # seconds, when BUSY


def job_claim(
    tenant_id: int,
    *,
    job_id: uuid.UUID,
    lease_owner: str,
    lease_seconds: float,
    on_publish_failure: PublishRetry | None = None,
) -> Claim:
    """Take the job for a new attempt: PROCESSING, attempt + 1, a lease until now + seconds.

    A finished job is republished (in case its terminal state never reached Redis) and
    reported FINISHED; a job whose lease another attempt still holds is BUSY.

    The common case, a PENDING job, is one statement (``repository.job_claim_pending``); every
    other state takes the locked read below.
    """
    pending = repository.job_claim_pending(
        tenant_id, job_id=job_id, lease_owner=lease_owner[:128], lease_seconds=lease_seconds
    )
    if pending is not None:
        return _claimed(tenant_id, pending.job)
    with transaction.atomic():
        locked = repository.job_lock(tenant_id, job_id=job_id, with_payload=True)
        if locked is None:
            return Claim(ClaimResult.MISSING)
        job, now = locked.job, locked.now
        if job.status in TERMINAL:
            result = (
                repository.job_result_data(tenant_id, job_id=job_id)
                if job.status == JobStatus.DONE
                else None
            )
            outbox.terminal_publish_on_commit(tenant_id, job, result, on_failure=on_publish_failure)
            return Claim(ClaimResult.FINISHED)
        lease = job.lease_expires_at
        if job.status == JobStatus.PROCESSING and lease is not None and lease > now:
            return Claim(ClaimResult.BUSY, lease_remaining=(lease - now).total_seconds())
        if job.cancel_requested:
            # Asked to stop while no attempt holds it (its worker died or gave it back): it
            # ends here, without running again.
            _cancelled_now(tenant_id, job, now, on_failure=on_publish_failure)
            return Claim(ClaimResult.FINISHED)
        job.status = JobStatus.PROCESSING
        job.attempt += 1
        job.lease_owner = lease_owner[:128]
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        job.started_at = now
        fields = ["status", "attempt", "lease_owner", "lease_expires_at", "started_at"]
        if job.message_sent_at is None:
            # A message reached a worker: whatever the sender recorded, it was sent.
            job.message_sent_at = now
            fields.append("message_sent_at")
        repository.job_save(tenant_id, job=job, fields=fields)
        return _claimed(tenant_id, job)


def _claimed(tenant_id: int, job: Job) -> Claim:
    """A claim made: PROCESSING goes to Redis once it commits (at once in autocommit)."""
    store.publish_on_commit(
        tenant_id,
        Topic.job(job.job_id),
        Change(
            status=JobStatus.PROCESSING,
            attempt=job.attempt,
            owner_id=job.created_by_id,
            job_type=job.job_type,
        ),
    )
    return Claim(
        ClaimResult.CLAIMED,
        job=ClaimedJob(
            job_id=job.job_id,
            tenant_id=tenant_id,
            job_type=job.job_type,
            payload=job.payload,
            attempt=job.attempt,
            owner_id=job.created_by_id,
        ),
    )


def job_lease_extend(
    tenant_id: int, *, job_id: uuid.UUID, attempt: int, lease_seconds: float
) -> bool:
    """Extend a running attempt's lease; False means the attempt no longer holds the job."""
    return repository.job_lease_extend(
        tenant_id, job_id=job_id, attempt=attempt, seconds=lease_seconds
    )


def job_lease_release(tenant_id: int, *, job_id: uuid.UUID, attempt: int) -> bool:
    """Give up a running attempt's lease (retry, shutdown) so the next delivery claims at once."""
    return repository.job_lease_release(tenant_id, job_id=job_id, attempt=attempt)


def job_finish(
    tenant_id: int,
    *,
    job_id: uuid.UUID,
    attempt: int,
    status: JobStatus,
    result: Any = None,
    error: str = "",
    on_publish_failure: PublishRetry | None = None,
) -> bool:
    """DONE with its result, FAILED with an error, or CANCELLED (its worker stopped it on a
    cancel request), if ``attempt`` still holds the job.

    Returns False, changing nothing, when another attempt took the job over or it has already
    finished: the caller must then leave the message alone.
    """
    if status not in TERMINAL:
        raise ValueError(f"{status} is not a terminal status")
    # One statement: the row, fenced by attempt and status, and the result row with it.
    job = repository.job_finish_attempt(
        tenant_id,
        job_id=job_id,
        attempt=attempt,
        status=status,
        error=error[:ERROR_MAX_LENGTH],
        result=result,
        store_result=status == JobStatus.DONE,
    )
    if job is None:
        current = repository.job_for_detail(tenant_id, job_id=job_id)
        if current is not None:
            logger.warning(
                "finish refused tenant=%s job=%s attempt=%s (job is %s at attempt %s)",
                tenant_id,
                job_id,
                attempt,
                current.status,
                current.attempt,
            )
        return False
    outbox.terminal_publish_on_commit(tenant_id, job, result, on_failure=on_publish_failure)
    return True


class DeadLetterResult(StrEnum):
    FAILED = "failed"  # failed now: its worker died on the last receive
    FINISHED = "finished"  # already DONE, FAILED or CANCELLED
    CANCELLED = "cancelled"  # cancelled now: it was asked to stop before its worker died
    MISSING = "missing"  # no such job in the tenant
    LEASED = "leased"  # an attempt still holds a live lease


def job_dead_letter_settle(
    tenant_id: int, *, job_id: uuid.UUID, on_publish_failure: PublishRetry | None = None
) -> DeadLetterResult:
    """FAILED for a job whose message reached the dead-letter queue unfinished (PENDING, or
    PROCESSING with its lease over), CANCELLED if it had been asked to stop, and what the
    job's dead letter is now worth.

    Nothing happens to a finished job or to one whose lease is still live somewhere.
    """
    with transaction.atomic():
        locked = repository.job_lock(tenant_id, job_id=job_id)
        if locked is None:
            return DeadLetterResult.MISSING
        job = locked.job
        if job.status in TERMINAL:
            return DeadLetterResult.FINISHED
        lease = job.lease_expires_at
        if job.status == JobStatus.PROCESSING and lease is not None and lease > locked.now:
            return DeadLetterResult.LEASED
        if job.cancel_requested:
            _cancelled_now(tenant_id, job, locked.now, on_failure=on_publish_failure)
            return DeadLetterResult.CANCELLED
        job.status = JobStatus.FAILED
        job.error = "The job was abandoned after repeated failed attempts."
        job.finished_at = locked.now
        job.lease_expires_at = None
        repository.job_save(
            tenant_id, job=job, fields=["status", "error", "finished_at", "lease_expires_at"]
        )
        outbox.terminal_publish_on_commit(tenant_id, job, None, on_failure=on_publish_failure)
    return DeadLetterResult.FAILED


def job_fail_dead_lettered(
    tenant_id: int, *, job_id: uuid.UUID, on_publish_failure: PublishRetry | None = None
) -> bool:
    """:func:`job_dead_letter_settle`, True if it failed the job now."""
    settled = job_dead_letter_settle(
        tenant_id, job_id=job_id, on_publish_failure=on_publish_failure
    )
    return settled is DeadLetterResult.FAILED


# --- cancel (PROTOCOL.md §2, §5) ---------------------------------------------------------------
class CancelResult(StrEnum):
    CANCELLED = "cancelled"  # it was PENDING: CANCELLED now, and no worker will run it
    REQUESTED = "requested"  # it runs: its worker stops it and ends it CANCELLED
    FINISHED = "finished"  # already DONE, FAILED or CANCELLED: nothing changed


class CancelAnswer:
    """The state a cancel request published, caught by its after-commit hooks.

    The request's transaction commits inside the service, so by the time it returns the hooks
    have run (outside any outer transaction, as in a view) and :meth:`document` holds the
    state Redis answered: the new one, or the current one when nothing changed (a repeated
    request).
    """

    def __init__(self) -> None:
        self.result: PublishResult | None = None
        self.failed = False

    def published(self, result: PublishResult) -> None:
        self.result = result

    def unavailable(self, tenant_id: int, topic: Topic, change: Change) -> None:
        self.failed = True

    def document(self) -> dict[str, Any]:
        """The state document; :class:`ServiceUnavailable` when Redis could not be written.

        The request itself is recorded either way, and repeating it is harmless.
        """
        document = self.result.document if self.result is not None else None
        if document is None:
            raise ServiceUnavailable(
                _("The cancel is recorded, but its state cannot be shown now. Try again shortly."),
                retry_after=2,
            )
        return document


def job_may_cancel(caller: Caller, job_type: str) -> bool:
    """Staff and admin cancel any job of their tenant; other roles the jobs they could start
    (the visibility rule has already limited them to their own)."""
    if caller.role in (Role.ADMIN, Role.STAFF):
        return True
    spec = job_type_get(job_type)
    return spec is not None and caller.role in spec.roles


def job_cancel(tenant_id: int, *, job_id: uuid.UUID, caller: Caller) -> dict[str, Any]:
    """``POST /api/v1/jobs/{id}/cancel/``: the job's state document once the request is made.

    NotFound for a job the caller may not see (another tenant's, or another user's for roles
    below staff), PermissionDenied for a role that may not stop it, Conflict once it has ended.
    Repeating the request while the job runs changes nothing and answers its state again.
    """
    job = job_get_for_caller(tenant_id, job_id=job_id, caller=caller)
    if not job_may_cancel(caller, job.job_type):
        raise PermissionDenied(_("Your role may not cancel this job."))
    answer = CancelAnswer()
    outcome = job_cancel_request(
        tenant_id, job_id=job_id, on_published=answer.published, on_failure=answer.unavailable
    )
    if outcome is None:
        raise NotFound()
    if outcome is CancelResult.FINISHED:
        raise Conflict(_("The job has already ended; it cannot be cancelled."))
    logger.info("job cancel %s tenant=%s job=%s", outcome, tenant_id, job_id)
    return answer.document()


def job_cancel_request(
    tenant_id: int,
    *,
    job_id: uuid.UUID,
    on_published: Callable[[PublishResult], None] | None = None,
    on_failure: PublishRetry | None = None,
) -> CancelResult | None:
    """Ask the job to stop, in one transaction on its locked row; None when there is none.

    PENDING: CANCELLED now, published through the outbox like every terminal state. Running:
    ``cancel_requested`` is set and the whole state is published with it (so a topic Redis
    lost comes back with the flag); a repeated request publishes the same state, which Redis
    answers unchanged. ``on_published`` gets what Redis answered after the commit. Callers
    holding a transaction (the videos' cancel) get the hooks at their commit.
    """
    with transaction.atomic():
        locked = repository.job_lock(tenant_id, job_id=job_id)
        if locked is None:
            return None
        job = locked.job
        if job.status in TERMINAL:
            return CancelResult.FINISHED
        if job.status == JobStatus.PENDING:
            _cancelled_now(tenant_id, job, locked.now, on_published=on_published)
            return CancelResult.CANCELLED
        if not job.cancel_requested:
            job.cancel_requested = True
            repository.job_save(tenant_id, job=job, fields=["cancel_requested"])
        store.publish_on_commit(
            tenant_id,
            Topic.job(job_id),
            _record_change(job),
            on_failure=on_failure,
            on_success=on_published,
        )
    return CancelResult.REQUESTED


def job_cancel_requested(tenant_id: int, *, job_id: uuid.UUID, attempt: int) -> bool:
    """Whether the job ``attempt`` runs was asked to stop (read at each heartbeat)."""
    return repository.job_cancel_requested(tenant_id, job_id=job_id, attempt=attempt)


def _cancelled_now(
    tenant_id: int,
    job: Job,
    now: Any,
    *,
    on_published: Callable[[PublishResult], None] | None = None,
    on_failure: PublishRetry | None = None,
) -> None:
    """Inside the row's transaction: CANCELLED without (another) run, published after it."""
    job.status = JobStatus.CANCELLED
    job.cancel_requested = True
    job.finished_at = now
    job.lease_expires_at = None
    repository.job_save(
        tenant_id,
        job=job,
        fields=["status", "cancel_requested", "finished_at", "lease_expires_at"],
    )
    outbox.terminal_publish_on_commit(
        tenant_id, job, None, on_failure=on_failure, on_published=on_published
    )
    hooks.cancelled_unrun_on_commit(tenant_id, job_type=job.job_type, job_id=job.job_id)
    logger.info("job cancelled without running tenant=%s job=%s", tenant_id, job.job_id)


# --- publishing -----------------------------------------------------------------------------
def _record_change(job: Job) -> Change:
    """The whole state of a job as its record holds it (a row read with its result)."""
    if job.status in TERMINAL:
        result = getattr(job, "result", None)
        return outbox.terminal_change(job, result.data if result is not None else None)
    return Change(
        status=job.status,
        attempt=job.attempt,
        owner_id=job.created_by_id,
        job_type=job.job_type,
        cancel_requested=job.cancel_requested,
    )
