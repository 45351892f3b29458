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

from django.db.models import Count, Q
from django.db.models.functions import Now

from domains.jobs.models import Job, JobResult, JobStatus

# What the detail endpoint shows: nothing else is read (payload can be large).
DETAIL_FIELDS = (
    "job_id",
    "job_type",
    "status",
    "attempt",
    "error",
    "created_by_id",
    "created_at",
    "started_at",
    "finished_at",
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
    "created_by_id",
    "started_at",
    "finished_at",
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
