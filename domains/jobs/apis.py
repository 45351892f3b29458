from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domains.jobs import services
from domains.jobs.models import Job
from domains.tenants.auth import caller_of
from realtime.http import progress_response
from realtime.keys import Topic


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

        def get_topic(self, job: Job) -> str:
            return str(Topic.job(job.job_id))

        def get_result(self, job: Job) -> Any:
            result = getattr(job, "result", None)
            return result.data if result is not None else None

        def get_progress_url(self, job: Job) -> str:
            return reverse("job-progress", kwargs={"job_id": job.job_id})

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        job = services.job_get_for_caller(caller.tenant_id, job_id=job_id, caller=caller)
        return Response(self.OutputSerializer(job).data)
