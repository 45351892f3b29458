"""Canned ffprobe JSON (shapes taken from Debian ffprobe 5.1 output) for the probe tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def video_stream(
    width: int = 1920,
    height: int = 1080,
    *,
    rotation: float | None = None,
    rotate_tag: str | None = None,
    frame_rate: str = "30/1",
    attached_pic: int = 0,
    codec: str = "h264",
) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "index": 0,
        "codec_name": codec,
        "codec_type": "video",
        "width": width,
        "height": height,
        "coded_width": width,
        "coded_height": height,
        "r_frame_rate": frame_rate,
        "avg_frame_rate": frame_rate,
        "duration": "4.000000",
        "disposition": {"default": 1, "attached_pic": attached_pic},
        "tags": {"language": "und", "handler_name": "VideoHandler"},
    }
    if rotation is not None:
        stream["side_data_list"] = [
            {"side_data_type": "Display Matrix", "displaymatrix": "...", "rotation": rotation}
        ]
    if rotate_tag is not None:
        stream["tags"]["rotate"] = rotate_tag
    return stream


def audio_stream(codec: str = "aac") -> dict[str, Any]:
    return {
        "index": 1,
        "codec_name": codec,
        "codec_type": "audio",
        "sample_rate": "44100",
        "channels": 1,
        "r_frame_rate": "0/0",
        "avg_frame_rate": "0/0",
        "duration": "4.000000",
        "disposition": {"default": 1, "attached_pic": 0},
    }


def ffprobe_json(
    *streams: dict[str, Any], duration: str | None = "4.000000", format_name: str = "mov,mp4"
) -> str:
    container: dict[str, Any] = {"filename": "source", "format_name": format_name}
    if duration is not None:
        container["duration"] = duration
    return json.dumps({"streams": list(streams), "format": container}, indent=4)


# --- HLS output as ffmpeg writes it ----------------------------------------------------------


def master_playlist(*names: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:6"]
    for index, name in enumerate(names):
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={(index + 1) * 1_000_000},RESOLUTION=640x360,"
            'CODECS="avc1.64001e,mp4a.40.2"',
            f"{name}/index.m3u8",
            "",
        ]
    return "\n".join(lines) + "\n"


def media_playlist(
    durations: list[float],
    *,
    target: int = 6,
    playlist_type: str | None = "VOD",
    ended: bool = True,
    init: str | None = None,
) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", f"#EXT-X-TARGETDURATION:{target}"]
    lines.append("#EXT-X-MEDIA-SEQUENCE:0")
    if playlist_type is not None:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{playlist_type}")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    if init is not None:
        lines.append(f'#EXT-X-MAP:URI="{init}"')
    for index, duration in enumerate(durations):
        lines += [f"#EXTINF:{duration:.6f},", f"seg_{index:05d}.ts"]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def write_output(root: Path, variants: dict[str, list[float]]) -> Path:
    """A complete output directory: master, one playlist and its segments per variant."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "master.m3u8").write_text(master_playlist(*variants))
    for name, durations in variants.items():
        (root / name).mkdir()
        (root / name / "index.m3u8").write_text(media_playlist(durations))
        for index in range(len(durations)):
            (root / name / f"seg_{index:05d}.ts").write_bytes(b"\x47" * 188)
    return root
