"""ORM access for jobs. The only module of the app that uses `.objects`."""

from __future__ import annotations

import uuid

from domains.jobs.models import Job

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


def job_for_detail(tenant_id: int, *, job_id: uuid.UUID) -> Job | None:
    return (
        Job.objects.filter(tenant_id=tenant_id, job_id=job_id)
        .select_related("result")
        .only(*DETAIL_FIELDS)
        .first()
    )
