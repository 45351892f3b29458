"""The registry of job types: what each accepts, which queue kind runs it, who may create it.

The API validates a new job's payload with its type's serializer and routes the message to its
kind's queue; the worker runner maps the same names to handlers (``workers/registry.py``) and
validates the payload again before running it. A new job type is one entry here, one handler.
Multipart types (the Excel import, ``excel_import`` on the AI queue) add ``accepts_file``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from rest_framework import serializers

from domains.jobs.dispatch import QueueKind
from domains.messaging.payloads import MessagingSendPayload
from domains.students.uploads import (
    ExcelImportPayload,
    PreparedUpload,
    excel_upload_matches,
    excel_upload_prepare,
)
from domains.videos.payloads import VIDEO_ENCODE, VideoEncodePayload
from realtime.identity import Role

# Roles that may start jobs acting on a whole tenant (mass email, imports).
OPERATOR_ROLES = frozenset({Role.ADMIN, Role.STAFF, Role.TEACHER})
# Roles that may import students.
IMPORT_ROLES = frozenset({Role.ADMIN, Role.STAFF})
EXCEL_IMPORT = "excel_import"

# Checks a multipart upload and its form fields (raising ValidationFailed), returning the bytes
# to store and the payload without its object key.
PrepareFile = Callable[[UploadedFile, dict[str, Any]], PreparedUpload]
# Whether a repeated multipart request (file and form fields) is the one a stored payload came
# from, answered without the expensive checks of ``PrepareFile`` (an Idempotency-Key replay).
ReplayMatches = Callable[[Mapping[str, Any], UploadedFile, dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class JobType:
    name: str
    kind: QueueKind
    payload: type[serializers.Serializer]
    roles: frozenset[Role]
    accepts_file: bool = False
    # For ``accepts_file`` types: the upload check. The stored payload then carries the
    # file's S3 ``object_key``, and ``payload`` validates that stored form.
    prepare_file: PrepareFile | None = None
    # For ``accepts_file`` types: the Idempotency-Key replay check, made before ``prepare_file``
    # (a replay never pays for a parse). JSON types compare their validated payloads.
    replay_matches: ReplayMatches | None = None
    # False for types another app queues itself (video_encode, by complete-upload): POST /jobs/
    # answers them as unknown, and the OpenAPI document does not offer them.
    public: bool = True


JOB_TYPES: dict[str, JobType] = {
    spec.name: spec
    for spec in (
        JobType(
            name="messaging.send",
            kind=QueueKind.MESSAGING,
            payload=MessagingSendPayload,
            roles=OPERATOR_ROLES,
        ),
        JobType(
            name=EXCEL_IMPORT,
            kind=QueueKind.AI,
            payload=ExcelImportPayload,
            roles=IMPORT_ROLES,
            accepts_file=True,
            prepare_file=excel_upload_prepare,
            replay_matches=excel_upload_matches,
        ),
        # Queued by complete-upload (domains/videos/services.py), not through POST /jobs/.
        JobType(
            name=VIDEO_ENCODE,
            kind=QueueKind.VIDEO,
            payload=VideoEncodePayload,
            roles=OPERATOR_ROLES,
            public=False,
        ),
    )
}


def job_type_get(name: str) -> JobType | None:
    return JOB_TYPES.get(name)


def job_types_of_kind(kind: QueueKind) -> list[JobType]:
    return [spec for spec in JOB_TYPES.values() if spec.kind == kind]
