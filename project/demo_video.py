"""The video demo page at ``/demo/video/`` (``make demo`` only, never in prod).

The page (``frontend-client/demo/video.html`` and ``video.js``) uploads a file, or the
"sample lecture" this module makes once with ffmpeg's lavfi sources, through the video API,
watches the encode over the WebSocket client, can cancel it, and plays the READY video with
hls.js, a dependency of the demo only (``frontend-client/demo/package.json``), never of the
published client library.

The sample is made at startup by ``make demo`` (``project.devrun``) into a cache directory
(``DEMO_CACHE_DIR``, default ``.run/demo-cache``) and kept there, so a restart reuses it; the
view makes it on first request if it is missing (an end-to-end test's server, say).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.static import serve

from project import devservices

CLIENT_DIR = settings.BASE_DIR / "frontend-client"
DEMO_DIR = CLIENT_DIR / "demo"
HLS_DIST = DEMO_DIR / "node_modules" / "hls.js" / "dist"

SAMPLE_NAME = "sample-lecture.mp4"
# A 720p source gives the ladder two rungs (720p, 360p) and takes a few seconds to encode.
SAMPLE_SIZE = "1280x720"
SAMPLE_RATE = 25
SAMPLE_SECONDS = 10
_made = threading.Lock()


class SampleUnavailable(RuntimeError):
    """ffmpeg is not installed, or could not make the sample."""


def cache_dir() -> Path:
    return Path(os.environ.get("DEMO_CACHE_DIR") or devservices.RUN_DIR / "demo-cache")


def sample_command(
    output: Path,
    *,
    size: str = SAMPLE_SIZE,
    seconds: float = SAMPLE_SECONDS,
    rate: int = SAMPLE_RATE,
    preset: str = "ultrafast",
) -> list[str]:
    """ffmpeg's lavfi test pattern (testsrc2) with a 440 Hz tone (sine), as H.264 and AAC in
    an mp4 with its index first. ``bench/video`` makes its 60 s clips with it too."""
    return [
        *("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y"),
        *("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
        *("-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-g", str(2 * rate)),
        *("-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart"),
        str(output),
    ]


def sample_lecture_ensure(directory: Path | None = None) -> Path:
    """The sample lecture's path, made once (atomically: a partial file is never served)."""
    target = (directory or cache_dir()) / SAMPLE_NAME
    with _made:
        if target.exists():
            return target
        if shutil.which("ffmpeg") is None:
            raise SampleUnavailable("ffmpeg is not installed: run `make ffmpeg`")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part.mp4")
        try:
            command = sample_command(partial)  # fixed argv, no shell, no user input
            subprocess.run(command, check=True, capture_output=True, timeout=300)  # noqa: S603
        except (OSError, subprocess.SubprocessError) as exc:
            partial.unlink(missing_ok=True)
            raise SampleUnavailable(f"ffmpeg could not make the sample: {exc}") from exc
        partial.replace(target)
        return target


def video_page(request: HttpRequest) -> FileResponse:
    return FileResponse((DEMO_DIR / "video.html").open("rb"), content_type="text/html")


def sample_lecture(request: HttpRequest) -> HttpResponse:
    try:
        sample = sample_lecture_ensure()
    except SampleUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")
    response = FileResponse(sample.open("rb"), content_type="video/mp4")
    response["Content-Disposition"] = f'inline; filename="{SAMPLE_NAME}"'
    return response


def hls_script(request: HttpRequest, path: str) -> HttpResponse:
    if not (HLS_DIST / "hls.min.js").exists():
        raise Http404("hls.js is not installed: run `make client`.")
    return serve(request, path, document_root=HLS_DIST)


urlpatterns = [
    path("demo/video/", video_page, name="demo-video"),
    path(f"demo/video/{SAMPLE_NAME}", sample_lecture, name="demo-video-sample"),
    re_path(r"^demo/vendor/(?P<path>hls\.min\.js(?:\.map)?)$", hls_script),
    re_path(r"^demo/(?P<path>video\.(?:js|css))$", serve, {"document_root": DEMO_DIR}),
]
