"""ORM access for jobs. The only module of the app that uses `.objects`.

Every function takes the tenant first and filters by it, the worker's too: a message names
its job *and* its tenant, and a job id from one tenant never matches a row of another.
Lease times use the database's clock (``Now()``), so workers on hosts with skewed clocks
still agree on whether a lease is live.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Now

from domains.common.cursors import Cursor
from domains.common.keyset import newest_first, with_statuses
from domains.jobs.models import TERMINAL_STATUSES, Job, JobResult, JobStatus

# What the detail endpoint shows: nothing else is read (payload can be large).
DETAIL_FIELDS = (
    "job_id",
    "job_type",
    "status",
    "attempt",
    "error",
    "cancel_requested",
    "created_by_id",
    "created_at",
    "started_at",
    "finished_at",
    "terminal_published_at",
    "result__data",
)
# What a lifecycle transition reads besides the payload.
LIFECYCLE_FIELDS = (
    "id",
    "job_id",
    "tenant_id",
    "job_type",
    "status",
    "attempt",
    "lease_owner",
    "lease_expires_at",
    "error",
    "cancel_requested",
    "created_by_id",
    "started_at",
    "finished_at",
    "message_sent_at",
    "terminal_published_at",
)


def job_for_detail(tenant_id: int, *, job_id: uuid.UUID) -> Job | None:
    return (
        Job.objects.filter(tenant_id=tenant_id, job_id=job_id)
        .select_related("result")
        .only(*DETAIL_FIELDS)
        .first()
    )


def job_insert(
    tenant_id: int,
    *,
    job_type: str,
    payload: dict[str, Any],
    created_by_id: int,
    idempotency_key: str,
    job_id: uuid.UUID | None = None,
) -> Job:
    return Job.objects.create(
        job_id=job_id or uuid.uuid4(),
        tenant_id=tenant_id,
        job_type=job_type,
        payload=payload,
        created_by_id=created_by_id,
        idempotency_key=idempotency_key,
    )


def job_by_idempotency_key(
    tenant_id: int, *, created_by_id: int, idempotency_key: str
) -> Job | None:
    return Job.objects.filter(
        tenant_id=tenant_id, created_by_id=created_by_id, idempotency_key=idempotency_key
    ).first()


@dataclass(frozen=True, slots=True)
class LockedJob:
    """A job row locked FOR UPDATE in the caller's transaction, and the database's time."""

    job: Job
    now: datetime


def job_lock(tenant_id: int, *, job_id: uuid.UUID, with_payload: bool = False) -> LockedJob | None:
    """Lock the row until the surrounding transaction ends (call inside ``atomic``)."""
    fields = (*LIFECYCLE_FIELDS, "payload") if with_payload else LIFECYCLE_FIELDS
    job = (
        Job.objects.select_for_update()
        .filter(tenant_id=tenant_id, job_id=job_id)
        .only(*fields)
        .annotate(db_now=Now())
        .first()
    )
    if job is None:
        return None
    return LockedJob(job=job, now=job.db_now)


# --- one-statement transitions (the worker's hot path) -----------------------------------------
# A claim of a PENDING job and a finish are one statement each, in autocommit: the UPDATE locks
# the row and re-checks its WHERE on the row's latest version, which fences exactly as the
# locked read and write did, in one round trip instead of four or five. Whatever the statement
# does not match (a retry after a lost lease, a finished or cancelled job, another attempt)
# goes through the locked path in ``services``.
_TABLE = Job._meta.db_table
_RESULT_TABLE = JobResult._meta.db_table
_LIFECYCLE_COLUMNS = ", ".join(
    str(field.column)
    for field in Job._meta.concrete_fields
    if {field.name, field.attname} & {*LIFECYCLE_FIELDS, "payload"}
)
# A commit that need not wait for the WAL flush (PostgreSQL's asynchronous commit): the
# setting lasts for the statement's own implicit transaction. Only outside an atomic block:
# inside one it would make the whole enclosing transaction's commit asynchronous. Used where
# a commit lost in a crash of PostgreSQL costs a repeat and nothing else (the marks below,
# ADR 0011; the claim, ADR 0004).
_ASYNC_COMMIT = "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"


_CLAIM_SQL = f"""
UPDATE {_TABLE} SET status = %s, attempt = attempt + 1, lease_owner = %s,
    lease_expires_at = now() + make_interval(secs => %s), started_at = now(),
    message_sent_at = COALESCE(message_sent_at, now()), updated_at = now()
    {{source}}
WHERE tenant_id = %s AND job_id = %s AND status = %s AND NOT cancel_requested
RETURNING {_LIFECYCLE_COLUMNS}, now() AS db_now
"""  # noqa: S608 - table and column names are constants, values are parameters
_FINISH_SQL = f"""
WITH finished AS (
    UPDATE {_TABLE} SET status = %s, error = %s, finished_at = now(), lease_expires_at = NULL,
        updated_at = now()
    WHERE tenant_id = %s AND job_id = %s AND attempt = %s AND status = %s
    RETURNING {_LIFECYCLE_COLUMNS}
){{store}}
SELECT * FROM finished
"""  # noqa: S608 - constant names
_STORE_RESULT_SQL = f""",
stored AS (
    INSERT INTO {_RESULT_TABLE} (job_id, data, created_at) SELECT id, %s, now() FROM finished
)
"""  # noqa: S608 - constant names
_SENT_MARK_SQL = f"""
UPDATE {_TABLE} SET message_sent_at = now() {{source}}
WHERE tenant_id = %s AND job_id = %s AND message_sent_at IS NULL
"""  # noqa: S608 - constant names
_PUBLISHED_MARK_SQL = f"""
UPDATE {_TABLE} SET terminal_published_at = now() {{source}}
WHERE tenant_id = %s AND job_id = %s AND status = ANY(%s) AND terminal_published_at IS NULL
"""  # noqa: S608 - constant names


def _async_commit() -> str:
    return "" if connection.in_atomic_block else _ASYNC_COMMIT


def job_claim_pending(
    tenant_id: int, *, job_id: uuid.UUID, lease_owner: str, lease_seconds: float
) -> LockedJob | None:
    """Claim a PENDING job no one asked to cancel, in one statement: PROCESSING, attempt + 1,
    a lease until the database's now + ``lease_seconds``, ``message_sent_at`` if unset. None
    when the job is in any other state (or missing): the caller takes the locked path.

    Committed asynchronously outside a transaction (ADR 0004: a claim a crash of PostgreSQL
    undoes is a lost lease, which the attempt fence already handles).
    """
    sql = _CLAIM_SQL.format(source=_async_commit())
    params = [
        JobStatus.PROCESSING,
        lease_owner,
        float(lease_seconds),
        tenant_id,
        job_id,
        JobStatus.PENDING,
    ]
    claimed = list(Job.objects.raw(sql, params))
    if not claimed:
        return None
    job = claimed[0]
    return LockedJob(job=job, now=job.db_now)  # type: ignore[attr-defined] # a raw column


def job_finish_attempt(
    tenant_id: int,
    *,
    job_id: uuid.UUID,
    attempt: int,
    status: str,
    error: str,
    result: Any = None,
    store_result: bool = False,
) -> Job | None:
    """End ``attempt`` of a PROCESSING job in ``status`` (with its result row when
    ``store_result``), in one statement; None, changing nothing, when that attempt does not
    hold the job. Committed before it returns (outside a transaction): the terminal state is
    published only once it is durable."""
    params: list[Any] = [status, error, tenant_id, job_id, attempt, JobStatus.PROCESSING]
    if store_result:
        params.append(JobResult._meta.get_field("data").get_db_prep_save(result, connection))
    sql = _FINISH_SQL.format(store=_STORE_RESULT_SQL if store_result else "")
    finished = list(Job.objects.raw(sql, params))
    return finished[0] if finished else None


def job_save(tenant_id: int, *, job: Job, fields: list[str]) -> None:
    """Write the named fields of a row read (and locked) through this module."""
    if job.tenant_id != tenant_id:
        raise ValueError("job belongs to another tenant")
    job.save(update_fields=[*fields, "updated_at"])


def job_result_data(tenant_id: int, *, job_id: uuid.UUID) -> Any:
    return (
        JobResult.objects.filter(job__tenant_id=tenant_id, job__job_id=job_id)
        .values_list("data", flat=True)
        .first()
    )


def job_lease_extend(tenant_id: int, *, job_id: uuid.UUID, attempt: int, seconds: float) -> bool:
    """Move the lease of a running attempt to now + seconds; False if the attempt lost it."""
    updated = Job.objects.filter(
        tenant_id=tenant_id, job_id=job_id, attempt=attempt, status=JobStatus.PROCESSING
    ).update(lease_expires_at=Now() + timedelta(seconds=seconds), updated_at=Now())
    return updated == 1


def job_cancel_requested(tenant_id: int, *, job_id: uuid.UUID, attempt: int) -> bool:
    """Whether a cancel was asked for while ``attempt`` runs the job (the heartbeat's check)."""
    return Job.objects.filter(
        tenant_id=tenant_id,
        job_id=job_id,
        attempt=attempt,
        status=JobStatus.PROCESSING,
        cancel_requested=True,
    ).exists()


def job_lease_release(tenant_id: int, *, job_id: uuid.UUID, attempt: int) -> bool:
    """End a running attempt's lease now, so the next delivery can claim the job at once."""
    updated = Job.objects.filter(
        tenant_id=tenant_id, job_id=job_id, attempt=attempt, status=JobStatus.PROCESSING
    ).update(lease_expires_at=Now(), updated_at=Now())
    return updated == 1


def job_idempotency_key_clear(tenant_id: int, *, job_id: uuid.UUID) -> None:
    Job.objects.filter(tenant_id=tenant_id, job_id=job_id).update(idempotency_key="")


def job_exists(tenant_id: int, *, job_id: uuid.UUID) -> bool:
    return Job.objects.filter(tenant_id=tenant_id, job_id=job_id).exists()


# --- the outbox (docs/adr/0011-the-job-row-is-the-outbox.md) ----------------------------------
# The relay's two reads are the only ones across tenants: it works for the whole deployment,
# and every row it returns carries its tenant, which every write after it names again.
# Both marks commit asynchronously outside a transaction: a mark a crash of PostgreSQL undoes
# costs one more send or publish by the relay, which the outbox makes harmless (ADR 0011), and
# the request (or the job thread) does not wait for a WAL flush while it holds the row's lock,
# which the worker's claim (or the next transition) would otherwise queue behind.
def job_message_sent_mark(tenant_id: int, *, job_id: uuid.UUID) -> None:
    """Record that the job's queue message went out (the first time counts)."""
    with connection.cursor() as cursor:
        cursor.execute(_SENT_MARK_SQL.format(source=_async_commit()), [tenant_id, job_id])


def job_terminal_published_mark(tenant_id: int, *, job_id: uuid.UUID) -> None:
    """Record that the job's terminal state reached Redis."""
    with connection.cursor() as cursor:
        cursor.execute(
            _PUBLISHED_MARK_SQL.format(source=_async_commit()),
            [tenant_id, job_id, [str(status) for status in TERMINAL_STATUSES]],
        )


def jobs_unsent_lock(*, limit: int, older_than: float) -> list[Job]:
    """PENDING jobs whose message is not recorded as sent, committed at least ``older_than``
    seconds ago, oldest first, locked FOR UPDATE SKIP LOCKED (call inside ``atomic``).

    Rows another relay (or a claiming worker) holds are skipped, so relays never wait on each
    other and never take the same row at once.
    """
    return list(
        Job.objects.select_for_update(skip_locked=True)
        .filter(
            status=JobStatus.PENDING,
            message_sent_at__isnull=True,
            created_at__lte=Now() - timedelta(seconds=older_than),
        )
        .only("id", "job_id", "tenant_id", "job_type", "status")
        .order_by("created_at")[:limit]
    )


def jobs_unpublished(*, limit: int, older_than: float) -> list[tuple[int, uuid.UUID]]:
    """(tenant, job id) of finished jobs whose terminal state is not recorded as published,
    finished at least ``older_than`` seconds ago, oldest first (candidates: each is then locked
    on its own with :func:`job_unpublished_lock`)."""
    return list(
        Job.objects.filter(
            status__in=TERMINAL_STATUSES,
            terminal_published_at__isnull=True,
            finished_at__lte=Now() - timedelta(seconds=older_than),
        )
        .order_by("finished_at")
        .values_list("tenant_id", "job_id")[:limit]
    )


def outbox_backlog_counts() -> tuple[int, int]:
    """(PENDING jobs whose message is not recorded as sent, finished jobs whose terminal state
    is not recorded as published), across tenants: the relay's backlog (two counts on the
    outbox's partial indexes)."""
    unsent = Job.objects.filter(status=JobStatus.PENDING, message_sent_at__isnull=True).count()
    unpublished = Job.objects.filter(
        status__in=TERMINAL_STATUSES, terminal_published_at__isnull=True
    ).count()
    return unsent, unpublished


def job_unpublished_lock(tenant_id: int, *, job_id: uuid.UUID) -> Job | None:
    """The finished job, locked FOR UPDATE SKIP LOCKED, if its terminal state is still not
    recorded as published and no other transaction holds it (call inside ``atomic``)."""
    return (
        Job.objects.select_for_update(skip_locked=True)
        .filter(
            status__in=TERMINAL_STATUSES,
            terminal_published_at__isnull=True,
            tenant_id=tenant_id,
            job_id=job_id,
        )
        .only(*LIFECYCLE_FIELDS)
        .first()
    )


def jobs_published_since(
    *, since: datetime, after: tuple[datetime, int] | None = None, limit: int
) -> list[Job]:
    """Finished jobs whose terminal state was recorded as published at or after ``since``, in
    (``terminal_published_at``, id) order, the page after ``after`` (the last row's pair).

    The relay's third cross-tenant read, made only after Redis went back in time
    (``outbox.rewound_terminals_restore``): no index serves it, and none is worth keeping for
    an event that rare (the partial indexes above hold only rows with work to do).
    """
    rows = Job.objects.filter(status__in=TERMINAL_STATUSES, terminal_published_at__gte=since)
    if after is not None:
        published_at, row_id = after
        rows = rows.filter(
            Q(terminal_published_at__gt=published_at)
            | Q(terminal_published_at=published_at, id__gt=row_id)
        )
    return list(rows.only(*LIFECYCLE_FIELDS).order_by("terminal_published_at", "id")[:limit])


# --- the list (GET /api/v1/jobs/) -----------------------------------------------------------
# What a list row shows, and its key: never the payload, the result, the error or the lease.
LIST_FIELDS = ("id", "job_id", "job_type", "status", "created_at", "started_at", "finished_at")


@dataclass(frozen=True, slots=True)
class JobListRow:
    id: int
    job_id: uuid.UUID
    job_type: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def key(self) -> Cursor:
        return Cursor(created_at=self.created_at, id=self.id)


def jobs_page_query(
    tenant_id: int,
    *,
    owner_id: int | None,
    statuses: tuple[str, ...] = (),
    job_type: str | None = None,
    after: Cursor | None = None,
    limit: int,
) -> QuerySet[Job, tuple[Any, ...]]:
    """The tenant's jobs, newest first by ``(created_at, id)``, below ``after`` if given
    (``domains/common/keyset.py``; the index is migration 0003's ``(tenant, created_at, id)``).

    ``owner_id`` restricts to one creator (``None``: the whole tenant). Exposed for the EXPLAIN
    tests; callers use :func:`jobs_page`.
    """
    jobs = with_statuses(Job.objects.filter(tenant_id=tenant_id), statuses)
    if owner_id is not None:
        jobs = jobs.filter(created_by_id=owner_id)
    if job_type is not None:
        jobs = jobs.filter(job_type=job_type)
    return newest_first(jobs, after).values_list(*LIST_FIELDS)[:limit]


def jobs_page(
    tenant_id: int,
    *,
    owner_id: int | None,
    statuses: tuple[str, ...] = (),
    job_type: str | None = None,
    after: Cursor | None = None,
    limit: int,
) -> list[JobListRow]:
    """At most ``limit`` rows of :func:`jobs_page_query`, in one query."""
    query = jobs_page_query(
        tenant_id,
        owner_id=owner_id,
        statuses=statuses,
        job_type=job_type,
        after=after,
        limit=limit,
    )
    return [JobListRow(*values) for values in query]


@dataclass(frozen=True, slots=True)
class ActiveJobs:
    tenant: int
    mine: int


def jobs_active_count(tenant_id: int, *, created_by_id: int) -> ActiveJobs:
    """Unfinished jobs of the tenant and of one user: one query on (tenant, status)."""
    counts = Job.objects.filter(
        tenant_id=tenant_id, status__in=(JobStatus.PENDING, JobStatus.PROCESSING)
    ).aggregate(tenant=Count("id"), mine=Count("id", filter=Q(created_by_id=created_by_id)))
    return ActiveJobs(tenant=int(counts["tenant"]), mine=int(counts["mine"]))
