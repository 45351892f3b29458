from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domains.tenants.auth import caller_of
from domains.videos import schemas, services
from domains.videos.hls import PLAYLIST_CONTENT_TYPE
from domains.videos.models import Video, VideoStatus
from realtime.http import progress_response
from realtime.keys import Topic


@csrf_exempt
async def video_progress_api(request: HttpRequest, video_id: uuid.UUID) -> HttpResponse:
    """GET …/progress/: the live encoding state from Redis. Zero SQL."""
    return await progress_response(request, Topic.video(video_id))


class VideoOutputSerializer(serializers.Serializer):
    """The database record of a video (PROTOCOL.md §5)."""

    video_id = serializers.UUIDField()
    topic = serializers.SerializerMethodField()
    session_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=VideoStatus.choices)
    filename = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    hls_path = serializers.CharField()
    duration = serializers.FloatField(allow_null=True)
    error = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    progress_url = serializers.SerializerMethodField()
    playlist_url = serializers.SerializerMethodField()

    class Meta:
        ref_name = "Video"

    def get_topic(self, video: Video) -> str:
        return str(Topic.video(video.video_id))

    def get_error(self, video: Video) -> str:
        return services.error_display(video.error)

    def get_progress_url(self, video: Video) -> str:
        return reverse("video-progress", kwargs={"video_id": video.video_id})

    def get_playlist_url(self, video: Video) -> str | None:
        if video.status != VideoStatus.READY:
            return None
        return reverse("video-playlist", kwargs={"video_id": video.video_id})


class VideoPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20


class VideoListCreateApi(APIView):
    """``POST``: register an upload (a presigned PUT); ``GET``: the tenant's videos."""

    class InputSerializer(serializers.Serializer):
        session_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        filename = serializers.CharField(max_length=1024)
        size = serializers.IntegerField(min_value=0, max_value=2**63 - 1)
        content_type = serializers.CharField(max_length=100)

        class Meta:
            ref_name = "VideoRegister"

    class OutputSerializer(serializers.Serializer):
        video_id = serializers.UUIDField(source="video.video_id")
        topic = serializers.SerializerMethodField()
        status = serializers.CharField(source="video.status")
        upload_url = serializers.URLField()
        upload_method = serializers.SerializerMethodField()
        upload_headers = serializers.DictField(child=serializers.CharField())
        expires_at = serializers.DateTimeField()
        complete_url = serializers.SerializerMethodField()
        detail_url = serializers.SerializerMethodField()
        progress_url = serializers.SerializerMethodField()

        class Meta:
            ref_name = "VideoRegistration"

        def get_topic(self, registration: services.Registration) -> str:
            return str(Topic.video(registration.video.video_id))

        def get_upload_method(self, registration: services.Registration) -> str:
            return "PUT"

        def get_complete_url(self, registration: services.Registration) -> str:
            return reverse(
                "video-complete-upload", kwargs={"video_id": registration.video.video_id}
            )

        def get_detail_url(self, registration: services.Registration) -> str:
            return reverse("video-detail", kwargs={"video_id": registration.video.video_id})

        def get_progress_url(self, registration: services.Registration) -> str:
            return reverse("video-progress", kwargs={"video_id": registration.video.video_id})

    class FilterSerializer(serializers.Serializer):
        session_id = serializers.IntegerField(required=False, min_value=1)
        status = serializers.ChoiceField(choices=VideoStatus.choices, required=False)

    @extend_schema(
        operation_id="videos_register",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **schemas.errors(schemas.REGISTER_INVALID, schemas.FORBIDDEN, schemas.UNAVAILABLE),
        },
        examples=[schemas.REGISTER_REQUEST_EXAMPLE, schemas.REGISTER_RESPONSE_EXAMPLE],
        description="Register a video upload (admin, staff, teacher). PUT the file to "
        "`upload_url` with `upload_headers` before `expires_at`, then call `complete_url`. "
        "Size and type limits are checked here; a refusal stores nothing.",
    )
    def post(self, request: Request) -> Response:
        caller = caller_of(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        registration = services.video_register(
            caller.tenant_id,
            caller=caller,
            session_id=data["session_id"],
            filename=data["filename"],
            size=data["size"],
            content_type=data["content_type"],
        )
        body = self.OutputSerializer(registration).data
        return Response(body, status=201, headers={"Location": body["detail_url"]})

    @extend_schema(
        operation_id="videos_list",
        parameters=[FilterSerializer],
        responses={200: VideoOutputSerializer(many=True), **schemas.errors()},
        description="The tenant's videos, newest first (staff and admin: all; others: their own).",
    )
    def get(self, request: Request) -> Response:
        caller = caller_of(request)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        videos = services.video_list_for_caller(
            caller.tenant_id,
            caller=caller,
            session_id=filters.validated_data.get("session_id"),
            status=filters.validated_data.get("status"),
        )
        paginator = VideoPagination()
        page = paginator.paginate_queryset(videos, request, view=self)
        return paginator.get_paginated_response(VideoOutputSerializer(page, many=True).data)


class VideoCompleteUploadApi(APIView):
    @extend_schema(
        operation_id="videos_complete_upload",
        request=None,
        responses={
            202: VideoOutputSerializer,
            **schemas.errors(
                schemas.COMPLETE_INVALID,
                schemas.NOT_FOUND,
                schemas.ALREADY_PROCESSED,
                schemas.UNAVAILABLE,
            ),
        },
        description="The uploaded object is checked (it exists, with the declared size), the "
        "video becomes UPLOADED and its encoding is queued. Repeating it while the video is "
        "not terminal changes nothing.",
    )
    def post(self, request: Request, video_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        video = services.video_complete_upload(caller.tenant_id, caller=caller, video_id=video_id)
        return Response(VideoOutputSerializer(video).data, status=202)


class VideoDetailApi(APIView):
    @extend_schema(
        operation_id="videos_retrieve",
        responses={200: VideoOutputSerializer, **schemas.errors(schemas.NOT_FOUND)},
        examples=[schemas.DETAIL_EXAMPLE],
    )
    def get(self, request: Request, video_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        video = services.video_get_for_caller(caller.tenant_id, video_id=video_id, caller=caller)
        video = services.video_state_repair(caller.tenant_id, video=video)
        return Response(VideoOutputSerializer(video).data)


def _playlist(text: str) -> HttpResponse:
    response = HttpResponse(text, content_type=PLAYLIST_CONTENT_TYPE)
    # Signed URLs inside: never cached by a shared cache, nor kept past their life.
    response["Cache-Control"] = "private, no-store"
    return response


PLAYLIST_RESPONSES: dict[Any, Any] = {
    (200, PLAYLIST_CONTENT_TYPE): OpenApiResponse(
        OpenApiTypes.STR, description="An HLS playlist (RFC 8216)."
    ),
    **schemas.errors(schemas.NOT_FOUND, schemas.NOT_READY, schemas.UNAVAILABLE),
}


class VideoPlaylistApi(APIView):
    @extend_schema(
        operation_id="videos_playlist",
        responses=PLAYLIST_RESPONSES,
        description="The master playlist of a READY video. Its variant playlists are served "
        "by this API too (`hls/<rung>/index.m3u8`, same authentication), with presigned, "
        "short-lived segment URLs.",
    )
    def get(self, request: Request, video_id: uuid.UUID) -> HttpResponse:
        caller = caller_of(request)

        def variant_url(rung: str) -> str:
            return reverse("video-variant", kwargs={"video_id": video_id, "rung": rung})

        text = services.video_master_playlist(
            caller.tenant_id, video_id=video_id, caller=caller, variant_url=variant_url
        )
        return _playlist(text)


class VideoVariantPlaylistApi(APIView):
    @extend_schema(
        operation_id="videos_variant_playlist",
        parameters=[OpenApiParameter("rung", str, OpenApiParameter.PATH, pattern=r"^[0-9]{2,4}p$")],
        responses=PLAYLIST_RESPONSES,
        description="One rendition's playlist of a READY video, with presigned segment URLs.",
    )
    def get(self, request: Request, video_id: uuid.UUID, rung: str) -> HttpResponse:
        caller = caller_of(request)
        text = services.video_variant_playlist(
            caller.tenant_id, video_id=video_id, caller=caller, rung=rung
        )
        return _playlist(text)
