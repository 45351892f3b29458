"""OpenAPI pieces of the video endpoints: their documented failures and examples.

The failures are cases of the one ``Error`` component (``domains.common.openapi``); the 401
every operation answers is added by the project's AutoSchema.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

from domains.common.openapi import ErrorCase, success_example

VIDEO_ID = "3f2b8a1c-0d4e-4c6b-9a51-2e7f10b4c8d9"

FORBIDDEN = ErrorCase(
    403,
    "permission_denied",
    "Your role may not upload videos.",
    summary="The caller's role may not upload videos",
)
REGISTER_INVALID = ErrorCase(
    400,
    "invalid",
    "The request contains invalid data.",
    {
        "size": ["The file is 6,000,000,000 bytes; at most 5,368,709,120 are accepted."],
        "content_type": ["Upload a video file (m4v, mkv, mov, mp4, webm)."],
    },
    summary="A size, type or file name that is not accepted",
)
COMPLETE_INVALID = ErrorCase(
    400,
    "invalid",
    "The file has not been uploaded yet.",
    {"upload": ["Upload the file to upload_url first."]},
    summary="The file is not uploaded, or not of the declared size",
)
ALREADY_PROCESSED = ErrorCase(
    409,
    "conflict",
    "The video has already been processed.",
    summary="The video is already READY, FAILED or CANCELLED",
)
COMPLETE_QUOTA_EXCEEDED = ErrorCase(
    429,
    "quota_exceeded",
    "You already have 20 unfinished jobs. Wait until one finishes.",
    summary="The encode is a job, and the caller or its tenant has too many unfinished ones; "
    "the upload stays PENDING_UPLOAD: call again after Retry-After seconds",
)
NOT_READY = ErrorCase(
    409,
    "conflict",
    "The video is not ready to play yet.",
    summary="The video is not READY",
)

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
        "cancel_requested": False,
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
COMPLETE_EXAMPLE = OpenApiExample(
    "Uploaded, its encode queued",
    value={
        "video_id": VIDEO_ID,
        "topic": f"video:{VIDEO_ID}",
        "session_id": 42,
        "status": "UPLOADED",
        "filename": "lecture-03.mp4",
        "size": 734_003_200,
        "hls_path": "",
        "duration": None,
        "error": "",
        "cancel_requested": False,
        "created_at": "2026-03-02T09:00:00Z",
        "updated_at": "2026-03-02T09:03:40Z",
        "progress_url": f"/media/videos/{VIDEO_ID}/progress/",
        "playlist_url": None,
    },
    response_only=True,
    status_codes=["202"],
)

CANCEL_FORBIDDEN = ErrorCase(
    403,
    "permission_denied",
    "Your role may not cancel videos.",
    summary="The caller's role may not upload, nor cancel, videos",
)
CANCEL_FINISHED = ErrorCase(
    409,
    "conflict",
    "The video has already been processed; it cannot be cancelled.",
    summary="The video is READY, FAILED or CANCELLED already",
)
CANCEL_UNAVAILABLE = ErrorCase(
    503,
    "unavailable",
    "The cancel is recorded, but its state cannot be shown now. Try again shortly.",
    summary="Redis did not answer: the request is recorded (the worker reads it from the "
    "database), its state is not; repeat it after Retry-After seconds",
)
CANCEL_EXAMPLES = [
    success_example(
        "An encode asked to stop",
        {
            "topic": f"video:{VIDEO_ID}",
            "seq": 12,
            "epoch": 1764554400123,
            "status": "PROCESSING",
            "progress": {
                "percent": 35.2,
                "step": "encoding",
                "step_index": 2,
                "step_total": 4,
                "step_name_display": "변환",
                "step_percent": None,
                "remaining_seconds": 210,
            },
            "error": None,
            "cancel_requested": True,
            "updated_at": 1764554412500,
            "hls_path": None,
            "duration": None,
            "session_id": 42,
        },
        status=202,
    ),
    success_example(
        "A video cancelled before its upload",
        {
            "topic": f"video:{VIDEO_ID}",
            "seq": 1,
            "epoch": 1764554400123,
            "status": "CANCELLED",
            "progress": None,
            "error": None,
            "cancel_requested": True,
            "updated_at": 1764554401200,
            "hls_path": None,
            "duration": None,
            "session_id": 42,
        },
        status=202,
    ),
]
