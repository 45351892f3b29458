"""Job services. Reads of the record happen once, when a job has ended (PROTOCOL.md §5)."""

from __future__ import annotations

import uuid

from domains.jobs import repository
from domains.jobs.models import Job
from domains.tenants.caller import Caller
from project.api.errors import NotFound


def job_get_for_caller(tenant_id: int, *, job_id: uuid.UUID, caller: Caller) -> Job:
    """The job record if the caller may see it; otherwise NotFound, as if it did not exist."""
    job = repository.job_for_detail(tenant_id, job_id=job_id)
    if job is None or not (caller.sees_whole_tenant or job.created_by_id == caller.user_id):
        raise NotFound()
    return job
