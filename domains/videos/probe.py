"""What ffprobe says about a source file, as a typed :class:`Probe`. Pure: parses text only.

Run the command of :func:`domains.videos.ffmpeg.ffprobe_command` (``ffprobe -v error
-print_format json -show_format -show_streams``) and pass its stdout, exit code and stderr to
:func:`parse_probe`. It returns a :class:`Probe` or raises a :class:`ProbeError` whose
``message`` a teacher understands (Korean and English, stable ``code``) and whose ``detail``
is for logs:

- :class:`ProbeUnreadable`: ffprobe failed (non-zero exit: empty, random, truncated or missing
  files all end here, with "Invalid data found when processing input" or "moov atom not
  found" on stderr), or its output is empty or not the expected JSON;
- :class:`ProbeNoVideo`: the file opens but holds no picture (audio only; a cover image in an
  audio file is not a video);
- :class:`ProbeNoDuration`: no positive duration (a still image, some browser recordings).

Sizes are what a viewer sees: a phone stores portrait video as landscape frames plus a
rotation (a display matrix in ``side_data_list``, or the older ``rotate`` tag), and ffmpeg
rotates the frames on decode before any filter, so a rotation of 90 or 270 degrees swaps the
stored width and height here. Non-square pixels (sample aspect ratio) are not corrected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domains.videos import messages as m
from domains.videos.messages import Message

# How much of ffprobe's stderr a ProbeError keeps for the logs.
STDERR_TAIL_CHARS = 2000


class ProbeError(Exception):
    """The source cannot be encoded. ``message`` is for the teacher, ``detail`` for the logs."""

    message: Message = m.UNREADABLE

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.message.code}: {detail}")
        self.detail = detail

    @property
    def code(self) -> str:
        return self.message.code


class ProbeUnreadable(ProbeError):
    message = m.UNREADABLE


class ProbeNoVideo(ProbeError):
    message = m.NO_VIDEO_STREAM


class ProbeNoDuration(ProbeError):
    message = m.NO_DURATION


@dataclass(frozen=True, slots=True)
class Probe:
    """A source video as the encoder needs it."""

    duration: float
    """Seconds, > 0: the container's duration, else the video stream's."""
    width: int
    """Displayed width in pixels, after rotation."""
    height: int
    """Displayed height in pixels, after rotation."""
    rotation: int
    """Display rotation in degrees as ffprobe reports it, normalised to 0, 90, 180 or 270."""
    fps: float | None
    """Average frame rate, ``None`` when ffprobe does not know it."""
    video_codec: str
    audio_codec: str | None
    """The first audio stream's codec, ``None`` when the file has no sound."""
    format_name: str

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def is_portrait(self) -> bool:
        return self.height > self.width

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)


def _tail(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text.strip()[-STDERR_TAIL_CHARS:]


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def _rate(value: Any) -> float | None:
    """``"30000/1001"`` -> 29.97; ``"0/0"`` and garbage -> None."""
    if not isinstance(value, str):
        return None
    numerator, _, denominator = value.partition("/")
    top, bottom = _float(numerator), _float(denominator or "1")
    if top is None or not bottom or top <= 0:
        return None
    return top / bottom


def _rotation(stream: Mapping[str, Any]) -> int:
    """Degrees from the display matrix (newer ffprobe) or the ``rotate`` tag, as 0/90/180/270.

    The sign conventions differ (the matrix's -90 is the tag's 90); both mean the same swap of
    width and height, which is all the encoder needs, so the value is only normalised.
    """
    degrees: float | None = None
    side_data = stream.get("side_data_list")
    if isinstance(side_data, Sequence):
        for entry in side_data:
            if isinstance(entry, Mapping) and "rotation" in entry:
                degrees = _float(entry["rotation"])
                break
    if degrees is None:
        tags = stream.get("tags")
        if isinstance(tags, Mapping):
            degrees = _float(tags.get("rotate"))
    if degrees is None:
        return 0
    return (round(degrees / 90) * 90) % 360


def _is_picture(stream: Mapping[str, Any]) -> bool:
    if stream.get("codec_type") != "video":
        return False
    disposition = stream.get("disposition")
    # Cover art of an audio file is a one-frame "video" stream marked as an attached picture.
    return not (isinstance(disposition, Mapping) and disposition.get("attached_pic") == 1)


def parse_probe(output: str | bytes, *, returncode: int = 0, stderr: str | bytes = "") -> Probe:
    """Parse ffprobe's JSON (``-show_format -show_streams``) into a :class:`Probe`.

    Raises :class:`ProbeUnreadable`, :class:`ProbeNoVideo` or :class:`ProbeNoDuration`.
    """
    if returncode != 0:
        raise ProbeUnreadable(f"ffprobe exited with {returncode}: {_tail(stderr) or '-'}")
    if isinstance(output, bytes):
        output = output.decode("utf-8", errors="replace")
    try:
        document = json.loads(output) if output.strip() else None
    except ValueError as error:
        raise ProbeUnreadable(f"ffprobe output is not JSON: {error}") from None
    if not isinstance(document, Mapping) or not document:
        raise ProbeUnreadable(f"ffprobe printed nothing usable: {_tail(stderr) or '-'}")
    streams = document.get("streams")
    container = document.get("format")
    if not isinstance(streams, Sequence) or not isinstance(container, Mapping):
        raise ProbeUnreadable("ffprobe output lacks 'streams' or 'format'")
    streams = [stream for stream in streams if isinstance(stream, Mapping)]

    video = next((stream for stream in streams if _is_picture(stream)), None)
    if video is None:
        kinds = ", ".join(str(stream.get("codec_type")) for stream in streams) or "none"
        raise ProbeNoVideo(f"no video stream (streams: {kinds})")
    stored_width, stored_height = _int(video.get("width")), _int(video.get("height"))
    if not stored_width or not stored_height or stored_width < 0 or stored_height < 0:
        raise ProbeUnreadable(
            f"video stream {video.get('index')} ({video.get('codec_name')}) has no picture size"
        )

    duration = _float(container.get("duration"))
    if duration is None or duration <= 0:
        duration = _float(video.get("duration"))
    if duration is None or duration <= 0:
        raise ProbeNoDuration(f"duration is {container.get('duration', 'absent')!r}")

    rotation = _rotation(video)
    width, height = (
        (stored_height, stored_width) if rotation in (90, 270) else (stored_width, stored_height)
    )
    audio = next((stream for stream in streams if stream.get("codec_type") == "audio"), None)
    return Probe(
        duration=duration,
        width=width,
        height=height,
        rotation=rotation,
        fps=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")),
        video_codec=str(video.get("codec_name") or "unknown"),
        audio_codec=str(audio.get("codec_name") or "unknown") if audio is not None else None,
        format_name=str(container.get("format_name") or "unknown"),
    )
