from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domains.common import openapi
from domains.tenants.auth import caller_of
from domains.videos import services
from domains.videos.models import Video
from realtime.http import progress_response
from realtime.keys import Topic

_VIDEO_ID = "3f2b8a1c-0d4e-4c6b-9a51-2e7f10b4c8d9"


@csrf_exempt
async def video_progress_api(request: HttpRequest, video_id: uuid.UUID) -> HttpResponse:
    """GET …/progress/: the live encoding state from Redis. Zero SQL."""
    return await progress_response(request, Topic.video(video_id))


class VideoDetailApi(APIView):
    class OutputSerializer(serializers.Serializer):
        video_id = serializers.UUIDField()
        topic = serializers.SerializerMethodField()
        session_id = serializers.IntegerField()
        status = serializers.CharField()
        hls_path = serializers.CharField()
        duration = serializers.FloatField(allow_null=True)
        error = serializers.CharField()
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()
        progress_url = serializers.SerializerMethodField()

        def get_topic(self, video: Video) -> str:
            return str(Topic.video(video.video_id))

        def get_progress_url(self, video: Video) -> str:
            return reverse("video-progress", kwargs={"video_id": video.video_id})

    @extend_schema(
        responses={200: OutputSerializer, **openapi.error_responses(openapi.NOT_FOUND)},
        examples=[
            openapi.success_example(
                "Ready",
                {
                    "video_id": _VIDEO_ID,
                    "topic": f"video:{_VIDEO_ID}",
                    "session_id": 7,
                    "status": "READY",
                    "hls_path": f"videos/1/{_VIDEO_ID}/1/master.m3u8",
                    "duration": 312.4,
                    "error": "",
                    "created_at": "2026-12-01T09:00:00Z",
                    "updated_at": "2026-12-01T09:20:00Z",
                    "progress_url": f"/media/videos/{_VIDEO_ID}/progress/",
                },
            )
        ],
    )
    def get(self, request: Request, video_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        video = services.video_get_for_caller(caller.tenant_id, video_id=video_id, caller=caller)
        services.video_state_repair(caller.tenant_id, video=video)
        return Response(self.OutputSerializer(video).data)
