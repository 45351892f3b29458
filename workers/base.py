"""What a handler sees: the job it runs, and the progress API. The runner owns the rest.

A handler implements one ``run(job, progress) -> dict`` (STYLE.md §9): parse the payload, call a
service, report progress, return the result. It never touches Redis, SQS or job rows; it
raises :class:`PermanentError` for a job that can never succeed, lets any other exception
propagate for a retry, and stops when the progress API raises :class:`LeaseLost` or
:class:`JobCancelled` (a cancel request: the job ends CANCELLED).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from domains.jobs.dispatch import QueueKind
from domains.jobs.errors import JobCancelled, LeaseLost, PermanentError
from realtime.keys import Topic
from realtime.state import Change, Progress
from realtime.throttle import ProgressThrottle

__all__ = ["Handler", "JobCancelled", "JobProgress", "JobRun", "LeaseLost", "PermanentError"]


@dataclass(frozen=True, slots=True)
class JobRun:
    job_id: uuid.UUID
    tenant_id: int
    job_type: str
    payload: dict[str, Any]  # validated by the job type's payload serializer
    attempt: int
    owner_id: int | None
    kind: QueueKind
    receive_count: int

    @property
    def topic(self) -> Topic:
        return Topic.job(self.job_id)


class Handler(Protocol):
    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]: ...


class JobProgress:
    """Progress of one attempt, through the process's publish throttle (realtime/throttle.py).

    Updates carry the attempt, so Redis ignores them once a newer attempt has started; the
    throttle coalesces them to one publish per topic per ``REALTIME_PROGRESS_INTERVAL``.
    """

    def __init__(
        self,
        *,
        job: JobRun,
        throttle: ProgressThrottle,
        lost: threading.Event,
        cancelled: threading.Event | None = None,
    ) -> None:
        self._job = job
        self._throttle = throttle
        self._lost = lost
        self._cancelled = threading.Event() if cancelled is None else cancelled

    @property
    def lease_lost(self) -> bool:
        """True once this attempt no longer owns the job; the handler should stop."""
        return self._lost.is_set()

    @property
    def cancel_requested(self) -> bool:
        """True once the worker has seen a cancel request; the handler should stop."""
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise :class:`LeaseLost` if this attempt no longer owns the job, else
        :class:`JobCancelled` if the job was asked to stop. Call it between units of work."""
        if self._lost.is_set():
            raise LeaseLost(f"attempt {self._job.attempt} of job {self._job.job_id} lost its lease")
        if self._cancelled.is_set():
            raise JobCancelled(f"job {self._job.job_id} was asked to stop")

    def update(
        self,
        *,
        percent: float | None = None,
        step: str | None = None,
        step_index: int | None = None,
        step_total: int | None = None,
        step_name_display: str | None = None,
        step_percent: float | None = None,
        remaining_seconds: int | None = None,
        topic: Topic | None = None,
    ) -> None:
        """Report progress on the job's topic, or on ``topic``: a topic the job works for,
        such as the ``video:<id>`` of a ``video_encode`` job, fenced by the same attempt."""
        self.check()
        target = self._job.topic if topic is None else topic
        change = Change(
            progress=Progress(
                percent=percent,
                step=step,
                step_index=step_index,
                step_total=step_total,
                step_name_display=step_name_display,
                step_percent=step_percent,
                remaining_seconds=remaining_seconds,
            ),
            attempt=self._job.attempt,
        )
        change.validate(target.kind)  # a handler bug surfaces here, not in the flush thread
        self._throttle.submit(self._job.tenant_id, target, change)
