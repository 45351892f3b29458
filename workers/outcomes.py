"""What one attempt came to, as a closed union the runner settles with a ``match``.

:func:`attempt_run` runs a claimed job's handler and classifies how it ended; it never raises
for anything the handler did. :meth:`workers.runner.Worker.settle` turns the outcome into a
transition of the job row, and mypy checks that every kind of outcome is handled.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from realtime.throttle import ProgressThrottle
from workers.base import JobCancelled, JobProgress, JobRun, LeaseLost, PermanentError
from workers.registry import Registered

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Done:
    """The handler returned a storable result: the job is DONE."""

    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failed:
    """The job can never succeed (``PermanentError``, invalid payload or result): FAILED now."""

    error: str


@dataclass(frozen=True, slots=True)
class Errored:
    """The attempt failed for a reason another attempt may not meet: retried, unless this was
    the last receive SQS allows."""

    error: Exception


@dataclass(frozen=True, slots=True)
class Lost:
    """The handler stopped because the progress API raised ``LeaseLost``. Settled like
    :class:`Errored` if the slot still runs (the runner normally abandoned it first)."""


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The handler stopped on a cancel request (``JobCancelled``): the job is CANCELLED."""


Outcome = Done | Failed | Errored | Lost | Cancelled


def attempt_run(
    *,
    run: JobRun,
    registered: Registered | None,
    throttle: ProgressThrottle,
    lost: threading.Event,
    cancelled: threading.Event | None = None,
) -> Outcome:
    """Validate the stored payload again, run the handler, and say how it ended."""
    try:
        if registered is None:
            raise PermanentError(f"No {run.kind} worker runs jobs of type {run.job_type}.")
        serializer = registered.spec.payload(data=run.payload)
        if not serializer.is_valid():
            logger.error("stored payload is invalid: %s", serializer.errors)
            raise PermanentError("The job's payload is not valid.")
        run = replace(run, payload=dict(serializer.validated_data))
        progress = JobProgress(job=run, throttle=throttle, lost=lost, cancelled=cancelled)
        result = registered.handler.run(run, progress)
        _check_result(result)
    except LeaseLost:
        return Lost()
    except JobCancelled:
        return Cancelled()
    except PermanentError as exc:
        return Failed(str(exc) or "The job failed.")
    except Exception as exc:
        logger.exception("attempt failed")
        return Errored(exc)
    finally:
        throttle.forget(run.tenant_id, run.topic)
    return Done(result)


def _check_result(result: Any) -> None:
    if not isinstance(result, dict):
        raise PermanentError("The job produced no result.")
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise PermanentError("The job produced a result that cannot be stored.") from exc
