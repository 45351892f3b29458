from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django_guid import get_guid
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import parsers, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domains.common import openapi
from domains.common.errors import ValidationFailed
from domains.common.lists import (
    CURSOR_PARAMETER,
    PAGE_SIZE_PARAMETER,
    ListQuerySerializer,
    RowLinks,
    page_body,
    page_serializer,
    page_size_of,
    query_data,
)
from domains.common.parsers import BoundedJSONParser
from domains.jobs import schemas, services
from domains.jobs.models import Job, JobStatus
from domains.jobs.repository import JobListRow
from domains.jobs.types import JOB_TYPES
from domains.jobs.uploads import XLSX_CONTENT_TYPE
from domains.tenants.auth import caller_of
from realtime.http import progress_response
from realtime.keys import Topic

IDEMPOTENCY_KEY_MAX_LENGTH = schemas.IDEMPOTENCY_KEY_MAX_LENGTH
IDEMPOTENCY_KEY = re.compile(schemas.IDEMPOTENCY_KEY_PATTERN)


class JobCreateApi(APIView):
    """Start a job: the row (PENDING), its state in Redis, then its queue message (PROTOCOL §5)."""

    parser_classes = (BoundedJSONParser, parsers.MultiPartParser)

    class InputSerializer(serializers.Serializer):
        job_type = serializers.CharField(max_length=64)
        payload = serializers.JSONField()

    class FileInputSerializer(serializers.Serializer):
        """multipart/form-data: ``job_type``, ``file`` and the type's own fields (for
        ``excel_import``: ``initial_password``, optional ``dry_run``)."""

        job_type = serializers.CharField(max_length=64)
        file = serializers.FileField(allow_empty_file=True)

    FILE_FORM_RESERVED = frozenset({"job_type", "file"})

    class OutputSerializer(serializers.Serializer):
        job_id = serializers.UUIDField()
        topic = serializers.SerializerMethodField()
        status = serializers.CharField()
        progress_url = serializers.SerializerMethodField()
        detail_url = serializers.SerializerMethodField()

        def get_topic(self, job: Job) -> str:
            return str(Topic.job(job.job_id))

        def get_progress_url(self, job: Job) -> str:
            return reverse("job-progress", kwargs={"job_id": job.job_id})

        def get_detail_url(self, job: Job) -> str:
            return reverse("job-detail", kwargs={"job_id": job.job_id})

    @extend_schema(
        request=schemas.JOB_CREATE_REQUEST,
        responses=schemas.job_create_responses(OutputSerializer),
        parameters=[schemas.IDEMPOTENCY_KEY, schemas.LOCATION, openapi.RETRY_AFTER],
        examples=schemas.JOB_CREATE_EXAMPLES,
    )
    def post(self, request: Request) -> Response:
        caller = caller_of(request)
        upload = None
        if request.content_type.startswith("multipart/form-data"):
            serializer: serializers.Serializer = self.FileInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            upload = serializer.validated_data["file"]
            form = request.data if isinstance(request.data, Mapping) else {}
            payload: Any = {
                name: form.get(name) for name in form if name not in self.FILE_FORM_RESERVED
            }
        else:
            serializer = self.InputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            payload = serializer.validated_data["payload"]
        key = request.headers.get("Idempotency-Key", "").strip()
        if not IDEMPOTENCY_KEY.fullmatch(key):
            raise ValidationFailed(
                fields={
                    "Idempotency-Key": [
                        _("At most %(n)d printable characters.") % {"n": IDEMPOTENCY_KEY_MAX_LENGTH}
                    ]
                }
            )
        job = services.job_create(
            caller.tenant_id,
            caller=caller,
            job_type=serializer.validated_data["job_type"],
            payload=payload,
            idempotency_key=key,
            request_id=get_guid() or "",
            upload=upload,
        )
        body = self.OutputSerializer(job).data
        return Response(body, status=202, headers={"Location": body["detail_url"]})


@csrf_exempt
async def job_progress_api(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """GET …/progress/: the live state document from Redis. Zero SQL."""
    return await progress_response(request, Topic.job(job_id))


class JobDetailApi(APIView):
    """The permanent record of a job, read once when it has ended."""

    class OutputSerializer(serializers.Serializer):
        job_id = serializers.UUIDField()
        topic = serializers.SerializerMethodField()
        job_type = serializers.CharField()
        status = serializers.CharField()
        attempt = serializers.IntegerField()
        error = serializers.CharField()
        cancel_requested = serializers.BooleanField(
            help_text="A cancel was asked for (POST …/cancel/)."
        )
        result = serializers.SerializerMethodField()
        created_at = serializers.DateTimeField()
        started_at = serializers.DateTimeField(allow_null=True)
        finished_at = serializers.DateTimeField(allow_null=True)
        progress_url = serializers.SerializerMethodField()
        failures_url = serializers.SerializerMethodField()

        def get_topic(self, job: Job) -> str:
            return str(Topic.job(job.job_id))

        def get_failures_url(self, job: Job) -> str | None:
            """For an Excel import with failed rows: where its .xlsx of them is."""
            if not services.job_has_failures(job):
                return None
            return reverse("job-failures", kwargs={"job_id": job.job_id})

        @extend_schema_field(OpenApiTypes.ANY)
        def get_result(self, job: Job) -> Any:
            result = getattr(job, "result", None)
            return result.data if result is not None else None

        def get_progress_url(self, job: Job) -> str:
            return reverse("job-progress", kwargs={"job_id": job.job_id})

    @extend_schema(
        responses={200: OutputSerializer, **openapi.error_responses(openapi.NOT_FOUND)},
        examples=[schemas.DETAIL_EXAMPLE],
    )
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        job = services.job_get_for_caller(caller.tenant_id, job_id=job_id, caller=caller)
        services.job_state_repair(caller.tenant_id, job=job)
        return Response(self.OutputSerializer(job).data)


class JobCancelApi(APIView):
    """POST …/cancel/: ask a PENDING or PROCESSING job to stop (PROTOCOL.md §2, §5)."""

    @extend_schema(
        operation_id="jobs_cancel",
        request=None,
        parameters=[openapi.RETRY_AFTER],
        responses={
            202: OpenApiResponse(
                openapi.state_document_schema("job"),
                description="The request is recorded; the body is the job's state document "
                "after it: CANCELLED at once for a PENDING job, `cancel_requested` true for a "
                "running one, which its worker ends CANCELLED within a heartbeat.",
            ),
            **openapi.error_responses(
                schemas.CANCEL_FORBIDDEN,
                openapi.NOT_FOUND,
                schemas.CANCEL_FINISHED,
                schemas.CANCEL_UNAVAILABLE,
            ),
        },
        examples=schemas.CANCEL_EXAMPLES,
        description="Ask a job to stop. A PENDING job is CANCELLED without running; a "
        "PROCESSING one stops at its next unit of work (a messaging batch, an import chunk, "
        "an encode) and ends CANCELLED; what it already committed stays. Staff and admin "
        "may cancel any job of the tenant, other roles the jobs they started and may start. "
        "Repeating the request while the job runs changes nothing and answers its state "
        "again; once the job has ended it answers 409.",
    )
    def post(self, request: Request, job_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        document = services.job_cancel(caller.tenant_id, job_id=job_id, caller=caller)
        return Response(document, status=202)


class JsonErrorsNegotiation(BaseContentNegotiation):
    """Errors of a download view are JSON whatever the client accepts (the body is no file)."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


class JobFailuresApi(APIView):
    """GET …/failures.xlsx: the failed rows of an Excel import, to fix and upload again."""

    content_negotiation_class = JsonErrorsNegotiation

    @extend_schema(
        responses={
            (200, XLSX_CONTENT_TYPE): OpenApiTypes.BINARY,
            **openapi.error_responses(openapi.NOT_FOUND),
        }
    )
    def get(self, request: Request, job_id: uuid.UUID) -> HttpResponse:
        caller = caller_of(request)
        job = services.job_get_for_caller(caller.tenant_id, job_id=job_id, caller=caller)
        body = services.job_failures_workbook(job)
        response = HttpResponse(body, content_type=XLSX_CONTENT_TYPE)
        response["Content-Disposition"] = f'attachment; filename="failures-{job.job_id}.xlsx"'
        return response


# --- the list -------------------------------------------------------------------------------
@extend_schema_serializer(component_name="JobListItem")
class JobListItemSerializer(RowLinks, serializers.Serializer):
    """One row of the list: enough to show it and to watch it (``topic``, ``progress_url``)."""

    job_id = serializers.UUIDField()
    topic = serializers.SerializerMethodField()
    job_type = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    progress_url = serializers.SerializerMethodField()
    detail_url = serializers.SerializerMethodField()

    id_attr = "job_id"
    progress_route = "job-progress"
    detail_route = "job-detail"

    def get_topic(self, row: JobListRow) -> str:
        return str(Topic.job(row.job_id))


JobListPageSerializer = page_serializer("JobListPage", JobListItemSerializer)


_JOB_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
JOB_LIST_EXAMPLE = OpenApiExample(
    "A page with more after it",
    response_only=True,
    status_codes=["200"],
    value={
        "results": [
            {
                "job_id": _JOB_ID,
                "topic": f"job:{_JOB_ID}",
                "job_type": "excel_import",
                "status": "PROCESSING",
                "created_at": "2026-12-01T09:30:00.123456+09:00",
                "started_at": "2026-12-01T09:30:01.002000+09:00",
                "finished_at": None,
                "progress_url": f"/api/v1/jobs/{_JOB_ID}/progress/",
                "detail_url": f"/api/v1/jobs/{_JOB_ID}/",
            }
        ],
        "next_cursor": "MTc2NDU0OTQwMDEyMzQ1Ni40Mg",
        "next": "/api/v1/jobs/?status=PROCESSING&page_size=1&cursor=MTc2NDU0OTQwMDEyMzQ1Ni40Mg",
    },
)
JOB_LIST_INVALID_EXAMPLE = OpenApiExample(
    "A status that does not exist",
    response_only=True,
    status_codes=["400"],
    value={
        "code": "invalid",
        "detail": "The request contains invalid data.",
        "fields": {"status": ['"RUNNING" is not a valid choice.']},
    },
)


class JobListApi(APIView):
    """GET /api/v1/jobs/: the tenant's jobs, newest first, a cursor page at a time."""

    class QuerySerializer(ListQuerySerializer):
        status = serializers.MultipleChoiceField(choices=JobStatus.choices, required=False)
        job_type = serializers.ChoiceField(choices=sorted(JOB_TYPES), required=False)

    @extend_schema(
        operation_id="jobs_list",
        description=(
            "The caller's tenant's jobs, newest first (`created_at`, then id), one cursor page "
            "at a time. Staff and admin see every job of the tenant, other roles their own. "
            "Each row carries the job's `topic`, so a client can subscribe to it, and its "
            "`progress_url` and `detail_url`. A page's `next_cursor` continues exactly where "
            "it ended, whatever was created since. Jobs have no session: `session_id` is "
            "refused with `400` (filter videos by session instead)."
        ),
        parameters=[
            OpenApiParameter(
                "status",
                str,
                OpenApiParameter.QUERY,
                many=True,
                enum=JobStatus.values,
                description="Only jobs in this status; repeat for any of several.",
            ),
            OpenApiParameter(
                "job_type",
                str,
                OpenApiParameter.QUERY,
                enum=sorted(JOB_TYPES),
                description="Only jobs of this type.",
            ),
            CURSOR_PARAMETER,
            PAGE_SIZE_PARAMETER,
        ],
        responses={
            200: JobListPageSerializer,
            400: OpenApiResponse(
                openapi.ErrorSerializer,
                description="`invalid`: a filter, cursor or page size that is not valid "
                "(`fields` names it), or `session_id`.",
            ),
            401: OpenApiResponse(
                openapi.ErrorSerializer, description="`not_authenticated` or `token_not_valid`."
            ),
            403: OpenApiResponse(
                openapi.ErrorSerializer,
                description="`password_change_required`: the user still has an initial password.",
            ),
        },
        examples=[JOB_LIST_EXAMPLE, JOB_LIST_INVALID_EXAMPLE],
    )
    def get(self, request: Request) -> Response:
        caller = caller_of(request)
        if "session_id" in request.query_params:
            raise ValidationFailed(
                fields={
                    "session_id": [
                        _("Jobs do not belong to a session: filter videos by session_id.")
                    ]
                }
            )
        query = self.QuerySerializer(data=query_data(request, repeated=("status",)))
        query.is_valid(raise_exception=True)
        page = services.jobs_list_for_caller(
            caller.tenant_id,
            caller=caller,
            statuses=tuple(sorted(query.validated_data.get("status", ()))),
            job_type=query.validated_data.get("job_type"),
            after=query.validated_data.get("cursor"),
            size=page_size_of(query.validated_data),
        )
        return Response(page_body(request, page, JobListItemSerializer))


class JobCollectionApi(JobListApi, JobCreateApi):
    """/api/v1/jobs/: GET lists (JobListApi), POST creates (JobCreateApi). One URL, two
    operations, each its own class with its own serializers; this one only joins them."""
