from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cached_property

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
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
    next_link,
    page_size_of,
    path_of,
    query_data,
)
from domains.tenants.auth import caller_of
from domains.videos import services
from domains.videos.models import Video, VideoStatus
from domains.videos.repository import VideoListRow
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


# --- the list -------------------------------------------------------------------------------
# PostgreSQL's bigint, the type of Video.session_id.
SESSION_ID_MAX = 2**63 - 1


@extend_schema_serializer(component_name="VideoListItem")
class VideoListItemSerializer(serializers.Serializer):
    """One row of the list: enough to show it and to watch it (``topic``, ``progress_url``)."""

    video_id = serializers.UUIDField()
    topic = serializers.SerializerMethodField()
    session_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=VideoStatus.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    progress_url = serializers.SerializerMethodField()
    detail_url = serializers.SerializerMethodField()

    def get_topic(self, row: VideoListRow) -> str:
        return str(Topic.video(row.video_id))

    # One reverse() a page, not two a row: ``many=True`` shares this instance over the rows.
    @cached_property
    def _progress_path(self) -> Callable[[uuid.UUID], str]:
        return path_of("video-progress", "video_id")

    @cached_property
    def _detail_path(self) -> Callable[[uuid.UUID], str]:
        return path_of("video-detail", "video_id")

    def get_progress_url(self, row: VideoListRow) -> str:
        return self._progress_path(row.video_id)

    def get_detail_url(self, row: VideoListRow) -> str:
        return self._detail_path(row.video_id)


@extend_schema_serializer(component_name="VideoListPage")
class VideoListPageSerializer(serializers.Serializer):
    results = VideoListItemSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last page."
    )
    next = serializers.CharField(
        allow_null=True, help_text="The next page's path with the same filters; null on the last."
    )


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
                int,
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
        body = {
            "results": VideoListItemSerializer(page.rows, many=True).data,
            "next_cursor": page.next_cursor.encode() if page.next_cursor else None,
            "next": next_link(request, page.next_cursor),
        }
        return Response(body)
