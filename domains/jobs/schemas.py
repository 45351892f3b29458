"""The OpenAPI description of the jobs endpoints, built from the job type registry.

``POST /api/v1/jobs/`` reads two bodies (``apis.JobCreateApi``): JSON ``{job_type, payload}``
for the types that take no file, one schema per type, discriminated on ``job_type``; and
multipart for the types that take a file (``excel_import``), with the file and the type's own
form fields. Both are derived from ``types.JOB_TYPES``, so a new type is documented by being
registered.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema_field,
)
from rest_framework import serializers

from domains.common import openapi
from domains.jobs.types import EXCEL_IMPORT, JOB_TYPES, JobType
from domains.students.services import MIN_PASSWORD_LENGTH
from domains.students.uploads import ExcelImportForm

IDEMPOTENCY_KEY_MAX_LENGTH = 128
# Visible ASCII: what an HTTP header carries unchanged; the server refuses anything else.
IDEMPOTENCY_KEY_PATTERN = rf"^[!-~]{{0,{IDEMPOTENCY_KEY_MAX_LENGTH}}}$"

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH, "pattern": IDEMPOTENCY_KEY_PATTERN},
    OpenApiParameter.HEADER,
    description=(
        "Repeat a request safely: the same key (same user) answers the first job again and "
        "queues nothing; the same key with a different request answers 409. At most "
        f"{IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters; empty means no key."
    ),
)
LOCATION = OpenApiParameter(
    "Location",
    {"type": "string"},
    OpenApiParameter.HEADER,
    description="The job's detail URL.",
    response=[202],
    required=True,
)


def _type_name(job_type: str) -> str:
    return "".join(part.capitalize() for part in job_type.replace(".", "_").split("_"))


def _job_type_field(job_type: str) -> serializers.Field:
    # A class of its own: DRF copies declared fields by re-instantiating their class.
    field_class = type(f"{_type_name(job_type)}TypeField", (serializers.CharField,), {})
    annotated = extend_schema_field({"type": "string", "enum": [job_type]})(field_class)
    return annotated()


def _json_request(spec: JobType) -> type[serializers.Serializer]:
    return type(
        f"{_type_name(spec.name)}JobSerializer",
        (serializers.Serializer,),
        {"__module__": __name__, "job_type": _job_type_field(spec.name), "payload": spec.payload()},
    )


class ExcelImportUploadSerializer(ExcelImportForm):
    """multipart/form-data of an ``excel_import`` job: the workbook and the form fields."""

    job_type = _job_type_field(EXCEL_IMPORT)
    file = serializers.FileField(help_text="The .xlsx workbook (one header row, then students).")
    initial_password = serializers.CharField(
        trim_whitespace=False,
        min_length=MIN_PASSWORD_LENGTH,
        max_length=128,
        help_text="Every new student's first password; they must change it at first login.",
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Classify the rows and report, without writing anything."
    )


# The multipart form of each type that accepts a file.
UPLOAD_FORMS: dict[str, type[serializers.Serializer]] = {EXCEL_IMPORT: ExcelImportUploadSerializer}

JSON_JOB_TYPES = {
    name: spec for name, spec in JOB_TYPES.items() if spec.public and not spec.accepts_file
}

JOB_CREATE_JSON = PolymorphicProxySerializer(
    component_name="JobCreate",
    serializers={name: _json_request(spec) for name, spec in JSON_JOB_TYPES.items()},
    resource_type_field_name="job_type",
)


def _upload_request() -> Any:
    forms = [UPLOAD_FORMS[name] for name, spec in JOB_TYPES.items() if spec.accepts_file]
    if len(forms) == 1:
        return forms[0]
    return PolymorphicProxySerializer(
        component_name="JobCreateUpload",
        serializers={name: UPLOAD_FORMS[name] for name in UPLOAD_FORMS},
        resource_type_field_name="job_type",
    )


JOB_CREATE_REQUEST = {
    "application/json": JOB_CREATE_JSON,
    "multipart/form-data": _upload_request(),
}

_JOB_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

JOB_CREATE_EXAMPLES = [
    OpenApiExample(
        "messaging.send",
        value={
            "job_type": "messaging.send",
            "payload": {
                "subject": "수업 안내",
                "body": "내일 수업은 10시에 시작합니다.",
                "recipients": ["parent@example.com"],
            },
        },
        request_only=True,
        media_type="application/json",
    ),
    openapi.success_example(
        "Accepted",
        {
            "job_id": _JOB_ID,
            "topic": f"job:{_JOB_ID}",
            "status": "PENDING",
            "progress_url": f"/api/v1/jobs/{_JOB_ID}/progress/",
            "detail_url": f"/api/v1/jobs/{_JOB_ID}/",
        },
        status=202,
    ),
]

JOB_CREATE_ERRORS = openapi.error_responses(
    openapi.QUOTA_EXCEEDED,
    openapi.ErrorCase(
        400,
        "invalid",
        "The request contains invalid data.",
        {"payload": {"recipients": ["This list may not be empty."]}},
        "The payload, the file or a form field is invalid; `fields` says which",
    ),
    openapi.ErrorCase(
        400,
        "invalid",
        "The file is not an Excel workbook (.xlsx).",
        {"file": ["The file is not an Excel workbook (.xlsx)."]},
        "The upload is refused before anything is stored",
        name="invalid_file",
    ),
    openapi.PERMISSION_DENIED,
    openapi.CONFLICT,
    openapi.ErrorCase(
        503,
        "unavailable",
        "The file could not be stored. Try again shortly.",
        summary="The upload store or the queue did not answer; nothing was kept",
    ),
)


def job_create_responses(output: type[serializers.Serializer]) -> dict[int, Any]:
    return {
        202: OpenApiResponse(output, description="Accepted: the job is PENDING and queued."),
        **JOB_CREATE_ERRORS,
    }


DETAIL_EXAMPLE = openapi.success_example(
    "Done",
    {
        "job_id": _JOB_ID,
        "topic": f"job:{_JOB_ID}",
        "job_type": "excel_import",
        "status": "DONE",
        "attempt": 1,
        "error": "",
        "cancel_requested": False,
        "result": {
            "dry_run": False,
            "counts": {"created": 296, "restored": 0, "updated": 0, "unchanged": 0, "failed": 4},
            "failed_rows": [{"row": 19, "errors": [{"field": "name", "message": "Required"}]}],
        },
        "created_at": "2026-12-01T09:00:00Z",
        "started_at": "2026-12-01T09:00:01Z",
        "finished_at": "2026-12-01T09:00:04Z",
        "progress_url": f"/api/v1/jobs/{_JOB_ID}/progress/",
        "failures_url": f"/api/v1/jobs/{_JOB_ID}/failures.xlsx",
    },
)


CANCEL_FORBIDDEN = openapi.ErrorCase(
    403,
    "permission_denied",
    "Your role may not cancel this job.",
    summary="The caller's role may not stop this kind of job",
)
CANCEL_FINISHED = openapi.ErrorCase(
    409,
    "conflict",
    "The job has already ended; it cannot be cancelled.",
    summary="The job is DONE, FAILED or CANCELLED already",
)
CANCEL_UNAVAILABLE = openapi.ErrorCase(
    503,
    "unavailable",
    "The cancel is recorded, but its state cannot be shown now. Try again shortly.",
    summary="Redis did not answer: the request is recorded (the worker reads it from the "
    "database), its state is not; repeat it after Retry-After seconds",
)
CANCEL_EXAMPLES = [
    openapi.success_example(
        "A running job asked to stop",
        {
            "topic": f"job:{_JOB_ID}",
            "seq": 8,
            "epoch": 1764554400123,
            "status": "PROCESSING",
            "progress": {
                "percent": 40,
                "step": "sending",
                "step_index": 2,
                "step_total": 5,
                "step_name_display": "이메일 발송",
                "step_percent": None,
                "remaining_seconds": 30,
            },
            "error": None,
            "cancel_requested": True,
            "updated_at": 1764554409120,
            "job_type": "messaging.send",
            "result_in_db": False,
            "result": None,
        },
        status=202,
    ),
    openapi.success_example(
        "A pending job cancelled at once",
        {
            "topic": f"job:{_JOB_ID}",
            "seq": 2,
            "epoch": 1764554400123,
            "status": "CANCELLED",
            "progress": None,
            "error": None,
            "cancel_requested": True,
            "updated_at": 1764554401901,
            "job_type": "excel_import",
            "result_in_db": False,
            "result": None,
        },
        status=202,
    ),
]
