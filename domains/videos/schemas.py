"""OpenAPI pieces of the video endpoints: the error shape, documented failures, examples.

Written to issue 16's standard (every status code an operation answers, the shared error
schema ``{code, detail, fields}``, an example of each success). The ``Error`` component here
has the same name and fields as the project-wide one that issue adds, so the document has one
``Error`` either way; when that lands, these helpers can give way to it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

VIDEO_ID = "3f2b8a1c-0d4e-4c6b-9a51-2e7f10b4c8d9"


class ErrorSerializer(serializers.Serializer):
    """Every error answer (PROTOCOL.md §5)."""

    code = serializers.CharField(help_text="Stable, machine-readable: `not_found`, `invalid`, ...")
    detail = serializers.CharField(help_text="For people, in the caller's language.")
    fields = serializers.DictField(  # type: ignore[assignment]
        help_text="Per-field messages for `invalid`; else empty."
    )

    class Meta:
        ref_name = "Error"


def _error(status: int, code: str, detail: str, fields: dict[str, Any] | None = None) -> Any:
    return OpenApiResponse(
        response=ErrorSerializer,
        description=detail,
        examples=[
            OpenApiExample(
                f"{status} {code}",
                value={"code": code, "detail": detail, "fields": fields or {}},
                response_only=True,
                status_codes=[str(status)],
            )
        ],
    )


NOT_AUTHENTICATED = (
    401,
    _error(401, "not_authenticated", "Authentication credentials were not provided."),
)
FORBIDDEN = (
    403,
    _error(403, "permission_denied", "You do not have permission to perform this action."),
)
NOT_FOUND = (404, _error(404, "not_found", "Not found."))
UNAVAILABLE = (
    503,
    _error(503, "unavailable", "The service is temporarily unavailable. Try again shortly."),
)


def errors(*cases: tuple[int, Any]) -> dict[int, Any]:
    """Responses for ``cases``, plus the 401 every endpoint answers."""
    return dict((NOT_AUTHENTICATED, *cases))


REGISTER_INVALID = (
    400,
    _error(
        400,
        "invalid",
        "The request contains invalid data.",
        {
            "size": ["The file is 6,000,000,000 bytes; at most 5,368,709,120 are accepted."],
            "content_type": ["Upload a video file (m4v, mkv, mov, mp4, webm)."],
        },
    ),
)
COMPLETE_INVALID = (
    400,
    _error(
        400,
        "invalid",
        "The file has not been uploaded yet.",
        {"upload": ["Upload the file to upload_url first."]},
    ),
)
ALREADY_PROCESSED = (409, _error(409, "conflict", "The video has already been processed."))
NOT_READY = (409, _error(409, "conflict", "The video is not ready to play yet."))

REGISTER_REQUEST_EXAMPLE = OpenApiExample(
    "A lecture recording",
    value={
        "session_id": 42,
        "filename": "lecture-03.mp4",
        "size": 734_003_200,
        "content_type": "video/mp4",
    },
    request_only=True,
)
REGISTER_RESPONSE_EXAMPLE = OpenApiExample(
    "Registered",
    value={
        "video_id": VIDEO_ID,
        "topic": f"video:{VIDEO_ID}",
        "status": "PENDING_UPLOAD",
        "upload_url": "https://academy-videos.s3.ap-northeast-2.amazonaws.com/uploads/7/"
        f"{VIDEO_ID}/source?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&...",
        "upload_method": "PUT",
        "upload_headers": {"Content-Type": "video/mp4"},
        "expires_at": "2026-03-02T09:15:00Z",
        "complete_url": f"/media/videos/{VIDEO_ID}/complete-upload/",
        "detail_url": f"/media/videos/{VIDEO_ID}/",
        "progress_url": f"/media/videos/{VIDEO_ID}/progress/",
    },
    response_only=True,
    status_codes=["201"],
)
DETAIL_EXAMPLE = OpenApiExample(
    "A READY video",
    value={
        "video_id": VIDEO_ID,
        "topic": f"video:{VIDEO_ID}",
        "session_id": 42,
        "status": "READY",
        "filename": "lecture-03.mp4",
        "size": 734_003_200,
        "hls_path": f"videos/7/{VIDEO_ID}/1/master.m3u8",
        "duration": 3012.48,
        "error": "",
        "created_at": "2026-03-02T09:00:00Z",
        "updated_at": "2026-03-02T09:41:12Z",
        "progress_url": f"/media/videos/{VIDEO_ID}/progress/",
        "playlist_url": f"/media/videos/{VIDEO_ID}/playlist.m3u8",
    },
    response_only=True,
)
PLAYLIST_EXAMPLE = (
    "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=1020800,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\n'
    f"/media/videos/{VIDEO_ID}/hls/360p/index.m3u8\n"
)
