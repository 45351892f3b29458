"""Which handler runs each job type. Job types themselves (their queue kind and payload
serializer) are registered in ``domains/jobs/types.py``; this maps the same names to code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from domains.jobs.dispatch import QueueKind
from domains.jobs.types import JobType, job_type_get, job_types_of_kind
from workers.base import Handler
from workers.handlers.excel_import import ExcelImportHandler
from workers.handlers.messaging import MessagingSendHandler
from workers.handlers.video import VideoEncodeHandler


@dataclass(frozen=True, slots=True)
class Registered:
    spec: JobType
    handler: Handler


def default_handlers() -> dict[str, Handler]:
    return {
        "messaging.send": MessagingSendHandler(),
        "excel_import": ExcelImportHandler(),
        "video_encode": VideoEncodeHandler(),
    }


def registry_for(
    kind: QueueKind, handlers: Mapping[str, Handler] | None = None
) -> dict[str, Registered]:
    """The handlers a worker of ``kind`` runs; every job type of the kind must have one."""
    handlers = default_handlers() if handlers is None else handlers
    registered: dict[str, Registered] = {}
    for name, handler in handlers.items():
        spec = job_type_get(name)
        if spec is None:
            raise ImproperlyConfigured(f"handler for unknown job type {name!r}")
        if spec.kind == kind:
            registered[name] = Registered(spec=spec, handler=handler)
    missing = [spec.name for spec in job_types_of_kind(kind) if spec.name not in registered]
    if missing:
        raise ImproperlyConfigured(f"no handler for job types {missing} of kind {kind}")
    return registered
