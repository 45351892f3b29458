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


def job_save(tenant_id: int, *, job: Job, fields: list[str]) -> None:
    """Write the named fields of a row read (and locked) through this module."""
    if job.tenant_id != tenant_id:
        raise ValueError("job belongs to another tenant")
    job.save(update_fields=[*fields, "updated_at"])


def job_result_insert(tenant_id: int, *, job: Job, data: Any) -> None:
    if job.tenant_id != tenant_id:
        raise ValueError("job belongs to another tenant")
    JobResult.objects.create(job=job, data=data)


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
def job_message_sent_mark(tenant_id: int, *, job_id: uuid.UUID) -> None:
    """Record that the job's queue message went out (the first time counts)."""
    Job.objects.filter(tenant_id=tenant_id, job_id=job_id, message_sent_at__isnull=True).update(
        message_sent_at=Now()
    )


def job_terminal_published_mark(tenant_id: int, *, job_id: uuid.UUID) -> None:
    """Record that the job's terminal state reached Redis."""
    Job.objects.filter(
        tenant_id=tenant_id,
        job_id=job_id,
        status__in=TERMINAL_STATUSES,
        terminal_published_at__isnull=True,
    ).update(terminal_published_at=Now())


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
