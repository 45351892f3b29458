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

from domains.tenants.auth import caller_of
from domains.videos import services
from domains.videos.models import Video
from realtime.http import progress_response
from realtime.keys import Topic


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

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request, video_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        video = services.video_get_for_caller(caller.tenant_id, video_id=video_id, caller=caller)
        services.video_state_repair(caller.tenant_id, video=video)
        return Response(self.OutputSerializer(video).data)
