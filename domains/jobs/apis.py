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
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import parsers, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domains.common import openapi
from domains.common.errors import ValidationFailed
from domains.common.parsers import BoundedJSONParser
from domains.jobs import schemas, services
from domains.jobs.models import Job
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
