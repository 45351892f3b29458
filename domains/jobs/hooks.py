"""What an app does when a job of one of its types ends CANCELLED without its handler running.

That happens when a queued job is cancelled, and when a job asked to stop is claimed or
dead-lettered after its worker died. The job's own state is this app's; what another app keeps
beside it (a video's status, for its encode job) is that app's to settle. It registers a hook
for its job type (in its ``AppConfig.ready``), which runs after the job's transaction commits,
in a transaction of its own, with the job row already CANCELLED: the order of ADR 0013 (the job
row first, then the app's row) holds, and a failing hook is logged without undoing the cancel
(the app's read repair is the fallback).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from django.db import transaction

CancelledUnrun = Callable[[int, uuid.UUID], object]

_hooks: dict[str, CancelledUnrun] = {}


def register_cancelled_unrun(job_type: str, hook: CancelledUnrun) -> None:
    """Call ``hook(tenant_id, job_id)`` after a job of ``job_type`` is cancelled unrun."""
    _hooks[job_type] = hook


def cancelled_unrun_on_commit(tenant_id: int, *, job_type: str, job_id: uuid.UUID) -> None:
    """Inside the cancelling transaction: run the job type's hook once it commits."""
    hook = _hooks.get(job_type)
    if hook is not None:
        transaction.on_commit(functools.partial(hook, tenant_id, job_id), robust=True)
