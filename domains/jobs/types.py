"""The registry of job types: what each accepts, which queue kind runs it, who may create it.

The API validates a new job's payload with its type's serializer and routes the message to its
kind's queue; the worker runner maps the same names to handlers (``workers/registry.py``) and
validates the payload again before running it. A new job type is one entry here, one handler.
Multipart types (the Excel import, ``excel_import`` on the AI queue) add ``accepts_file``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import serializers

from domains.messaging.payloads import MessagingSendPayload
from domains.tenants.roles import Role
from project.queues import QueueKind

# Roles that may start jobs acting on a whole tenant (mass email, imports).
OPERATOR_ROLES = frozenset({Role.ADMIN, Role.STAFF, Role.TEACHER})


@dataclass(frozen=True, slots=True)
class JobType:
    name: str
    kind: QueueKind
    payload: type[serializers.Serializer]
    roles: frozenset[Role]
    accepts_file: bool = False


JOB_TYPES: dict[str, JobType] = {
    spec.name: spec
    for spec in (
        JobType(
            name="messaging.send",
            kind=QueueKind.MESSAGING,
            payload=MessagingSendPayload,
            roles=OPERATOR_ROLES,
        ),
    )
}


def job_type_get(name: str) -> JobType | None:
    return JOB_TYPES.get(name)


def job_types_of_kind(kind: QueueKind) -> list[JobType]:
    return [spec for spec in JOB_TYPES.values() if spec.kind == kind]
