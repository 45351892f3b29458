from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domains.common import openapi
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
from domains.tenants.auth import caller_of
from domains.videos import schemas, services
from domains.videos.hls import PLAYLIST_CONTENT_TYPE
from domains.videos.models import Video, VideoStatus
from domains.videos.repository import VideoListRow
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
    cancel_requested = serializers.BooleanField(
        help_text="A cancel was asked for (POST …/cancel/)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    progress_url = serializers.SerializerMethodField()
    playlist_url = serializers.SerializerMethodField()

    class Meta:
        ref_name = "VideoDetailResponse"

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


class VideoRegisterApi(APIView):
    """``POST``: register an upload, answered with a presigned PUT for its file."""

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

    @extend_schema(
        operation_id="videos_register",
        parameters=[openapi.RETRY_AFTER],
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **openapi.error_responses(
                schemas.REGISTER_INVALID, schemas.FORBIDDEN, openapi.UNAVAILABLE
            ),
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


class VideoCompleteUploadApi(APIView):
    @extend_schema(
        operation_id="videos_complete_upload",
        parameters=[openapi.RETRY_AFTER],
        request=None,
        responses={
            202: VideoOutputSerializer,
            **openapi.error_responses(
                schemas.COMPLETE_INVALID,
                openapi.NOT_FOUND,
                schemas.ALREADY_PROCESSED,
                schemas.COMPLETE_QUOTA_EXCEEDED,
                openapi.UNAVAILABLE,
            ),
        },
        examples=[schemas.COMPLETE_EXAMPLE],
        description="The uploaded object is checked (it exists, with the declared size), the "
        "video becomes UPLOADED and its encoding is queued. Repeating it while the video is "
        "not terminal changes nothing. The encode is a job, so the job quotas apply: past "
        "them the answer is 429 and the video waits, still PENDING_UPLOAD, for a retry.",
    )
    def post(self, request: Request, video_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        video = services.video_complete_upload(caller.tenant_id, caller=caller, video_id=video_id)
        return Response(VideoOutputSerializer(video).data, status=202)


class VideoDetailApi(APIView):
    @extend_schema(
        operation_id="videos_retrieve",
        responses={200: VideoOutputSerializer, **openapi.error_responses(openapi.NOT_FOUND)},
        examples=[schemas.DETAIL_EXAMPLE],
    )
    def get(self, request: Request, video_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        video = services.video_get_for_caller(caller.tenant_id, video_id=video_id, caller=caller)
        video = services.video_encode_outcome_repair(caller.tenant_id, video=video)
        services.video_state_repair(caller.tenant_id, video=video)
        return Response(VideoOutputSerializer(video).data)


class VideoCancelApi(APIView):
    """POST …/cancel/: stop a video's encode, or the video before it starts (PROTOCOL.md §5)."""

    @extend_schema(
        operation_id="videos_cancel",
        request=None,
        parameters=[openapi.RETRY_AFTER],
        responses={
            202: OpenApiResponse(
                openapi.state_document_schema("video"),
                description="The request is recorded; the body is the video's state document "
                "after it: CANCELLED at once when no encode runs yet, `cancel_requested` true "
                "while its worker stops the encode.",
            ),
            **openapi.error_responses(
                schemas.CANCEL_FORBIDDEN,
                openapi.NOT_FOUND,
                schemas.CANCEL_FINISHED,
                schemas.CANCEL_UNAVAILABLE,
            ),
        },
        examples=schemas.CANCEL_EXAMPLES,
        description="Cancel a video (admin, staff, teacher; a teacher their own). One "
        "waiting for its file or queued for encoding is CANCELLED at once; a running encode "
        "is stopped by its worker (ffmpeg gets SIGTERM, then SIGKILL), its outputs are "
        "deleted and the video ends CANCELLED. Repeating the request meanwhile changes "
        "nothing and answers the state again; a READY, FAILED or CANCELLED video answers 409.",
    )
    def post(self, request: Request, video_id: uuid.UUID) -> Response:
        caller = caller_of(request)
        document = services.video_cancel(caller.tenant_id, caller=caller, video_id=video_id)
        return Response(document, status=202)


def _playlist(text: str) -> HttpResponse:
    response = HttpResponse(text, content_type=PLAYLIST_CONTENT_TYPE)
    # Signed URLs inside: never cached by a shared cache, nor kept past their life.
    response["Cache-Control"] = "private, no-store"
    return response


PLAYLIST_RESPONSES: dict[Any, Any] = {
    (200, PLAYLIST_CONTENT_TYPE): OpenApiResponse(
        OpenApiTypes.STR, description="An HLS playlist (RFC 8216)."
    ),
    **openapi.error_responses(openapi.NOT_FOUND, schemas.NOT_READY, openapi.UNAVAILABLE),
}


class VideoPlaylistApi(APIView):
    @extend_schema(
        operation_id="videos_playlist",
        parameters=[openapi.RETRY_AFTER],
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
        parameters=[
            OpenApiParameter("rung", str, OpenApiParameter.PATH, pattern=r"^[0-9]{2,4}p$"),
            openapi.RETRY_AFTER,
        ],
        responses=PLAYLIST_RESPONSES,
        description="One rendition's playlist of a READY video, with presigned segment URLs.",
    )
    def get(self, request: Request, video_id: uuid.UUID, rung: str) -> HttpResponse:
        caller = caller_of(request)
        text = services.video_variant_playlist(
            caller.tenant_id, video_id=video_id, caller=caller, rung=rung
        )
        return _playlist(text)


# --- the list -------------------------------------------------------------------------------
# PostgreSQL's bigint, the type of Video.session_id.
SESSION_ID_MAX = 2**63 - 1


@extend_schema_serializer(component_name="VideoListItem")
class VideoListItemSerializer(RowLinks, serializers.Serializer):
    """One row of the list: enough to show it and to watch it (``topic``, ``progress_url``)."""

    video_id = serializers.UUIDField()
    topic = serializers.SerializerMethodField()
    session_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=VideoStatus.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    progress_url = serializers.SerializerMethodField()
    detail_url = serializers.SerializerMethodField()

    id_attr = "video_id"
    progress_route = "video-progress"
    detail_route = "video-detail"

    def get_topic(self, row: VideoListRow) -> str:
        return str(Topic.video(row.video_id))


VideoListPageSerializer = page_serializer("VideoListPage", VideoListItemSerializer)


_VIDEO_ID = "3f2b8a1c-0d4e-4c6b-9a51-2e7f10b4c8d9"
VIDEO_LIST_EXAMPLE = OpenApiExample(
    "The last page of one session's videos",
    response_only=True,
    status_codes=["200"],
    value={
        "results": [
            {
                "video_id": _VIDEO_ID,
                "topic": f"video:{_VIDEO_ID}",
                "session_id": 4021,
                "status": "READY",
                "created_at": "2026-12-01T09:30:00.123456+09:00",
                "updated_at": "2026-12-01T09:41:12.500000+09:00",
                "progress_url": f"/media/videos/{_VIDEO_ID}/progress/",
                "detail_url": f"/media/videos/{_VIDEO_ID}/",
            }
        ],
        "next_cursor": None,
        "next": None,
    },
)
VIDEO_LIST_INVALID_EXAMPLE = OpenApiExample(
    "A session id that is not a number",
    response_only=True,
    status_codes=["400"],
    value={
        "code": "invalid",
        "detail": "The request contains invalid data.",
        "fields": {"session_id": ["A valid integer is required."]},
    },
)


class VideoListApi(APIView):
    """GET /media/videos/: the tenant's videos, newest first, a cursor page at a time."""

    class QuerySerializer(ListQuerySerializer):
        session_id = serializers.IntegerField(required=False, min_value=1, max_value=SESSION_ID_MAX)
        status = serializers.MultipleChoiceField(choices=VideoStatus.choices, required=False)

    @extend_schema(
        operation_id="videos_list",
        description=(
            "The caller's tenant's videos, newest first (`created_at`, then id), one cursor "
            "page at a time. Staff and admin see every video of the tenant, other roles their "
            "own. Each row carries the video's `topic`, so a client can subscribe to it, and "
            "its `progress_url` and `detail_url`. A page's `next_cursor` continues exactly "
            "where it ended, whatever was uploaded since."
        ),
        parameters=[
            OpenApiParameter(
                "session_id",
                {"type": "integer", "minimum": 1, "maximum": SESSION_ID_MAX},
                OpenApiParameter.QUERY,
                description="Only the videos of this lecture session (1 to 2^63 - 1).",
            ),
            OpenApiParameter(
                "status",
                str,
                OpenApiParameter.QUERY,
                many=True,
                enum=VideoStatus.values,
                description="Only videos in this status; repeat for any of several.",
            ),
            CURSOR_PARAMETER,
            PAGE_SIZE_PARAMETER,
        ],
        responses={
            200: VideoListPageSerializer,
            400: OpenApiResponse(
                openapi.ErrorSerializer,
                description="`invalid`: a filter, cursor or page size that is not valid "
                "(`fields` names it).",
            ),
            401: OpenApiResponse(
                openapi.ErrorSerializer, description="`not_authenticated` or `token_not_valid`."
            ),
            403: OpenApiResponse(
                openapi.ErrorSerializer,
                description="`password_change_required`: the user still has an initial password.",
            ),
        },
        examples=[VIDEO_LIST_EXAMPLE, VIDEO_LIST_INVALID_EXAMPLE],
    )
    def get(self, request: Request) -> Response:
        caller = caller_of(request)
        query = self.QuerySerializer(data=query_data(request, repeated=("status",)))
        query.is_valid(raise_exception=True)
        page = services.videos_list_for_caller(
            caller.tenant_id,
            caller=caller,
            session_id=query.validated_data.get("session_id"),
            statuses=tuple(sorted(query.validated_data.get("status", ()))),
            after=query.validated_data.get("cursor"),
            size=page_size_of(query.validated_data),
        )
        return Response(page_body(request, page, VideoListItemSerializer))


class VideoCollectionApi(VideoListApi, VideoRegisterApi):
    """/media/videos/: GET lists (VideoListApi), POST registers an upload (VideoRegisterApi).
    One URL, two operations, each its own class with its own serializers; this one joins them."""
