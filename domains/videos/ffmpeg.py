"""argv builders for ffprobe and ffmpeg (lists for ``subprocess``, never shell strings). Pure.

One ffmpeg process encodes the whole ladder (``split`` then ``scale`` per rung): the source is
decoded once, and the progress report has one timeline for all renditions, so one percent
covers the job. The output directory gets, for a 720p source::

    master.m3u8           lists 360p/index.m3u8 and 720p/index.m3u8
    360p/index.m3u8       VOD playlist: #EXT-X-PLAYLIST-TYPE:VOD ... #EXT-X-ENDLIST
    360p/seg_00000.ts     MPEG-TS segments of about 6 s
    720p/...

Choices, and why (``research/video_anchors.md`` §2):

- keyframes are forced every :data:`SEGMENT_SECONDS` (``expr:gte(t,n_forced*6)``) and x264's
  scene-cut keyframes are off, because the HLS muxer cuts a segment only on a keyframe:
  without this ``-hls_time`` is silently stretched to the encoder's GOP (8.3 s seen), and the
  renditions' segments would not line up for switching;
- ``-hls_playlist_type vod`` writes a complete playlist with ``#EXT-X-ENDLIST``;
  ``temp_file`` makes ffmpeg write each playlist and segment under a temporary name and rename
  it when done (a VOD playlist is otherwise written in place, and a killed run leaves a 0-byte
  playlist); ``independent_segments`` says every segment starts with a keyframe;
- audio is mapped once per rendition only when the probe found audio (a map naming a missing
  stream is an error), AAC 48 kHz stereo;
- H.264 High profile, 4:2:0 (what Apple's HLS authoring spec asks for), preset ``veryfast``;
- ``-progress pipe:1 -nostats``: machine-readable progress on stdout (parse it with
  :mod:`domains.videos.ffprogress`), nothing on stderr but warnings and errors
  (``-loglevel warning``), so the caller can keep a bounded tail of stderr for the error;
- ``-nostdin``: ffmpeg never reads the worker's stdin; stop it with SIGTERM (then SIGKILL);
- inputs are passed as ``file:<absolute path>`` so a file name is never read as a protocol
  or an option.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from domains.videos.hls import MASTER_PLAYLIST
from domains.videos.ladder import Rung, choose_ladder
from domains.videos.probe import Probe

SEGMENT_SECONDS = 6
VARIANT_PLAYLIST = "index.m3u8"
SEGMENT_PATTERN = "seg_%05d.ts"
AUDIO_SAMPLE_RATE = 48_000
DEFAULT_PRESET = "veryfast"
DEFAULT_STATS_PERIOD = 1.0


def _input(path: str | os.PathLike[str]) -> str:
    return f"file:{Path(path).absolute()}"


def ffprobe_command(source: str | os.PathLike[str], *, ffprobe: str = "ffprobe") -> list[str]:
    """``ffprobe`` printing format and streams as JSON; parse its stdout with ``parse_probe``."""
    return [
        ffprobe,
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        _input(source),
    ]


def variant_playlist_uri(rung: Rung) -> str:
    """The URI of a rung's playlist relative to the master playlist, e.g. ``720p/index.m3u8``."""
    return f"{rung.name}/{VARIANT_PLAYLIST}"


def variant_playlist_uris(ladder: Sequence[Rung]) -> list[str]:
    """What the master playlist must list, in order: pass it to ``hls.validate_output``."""
    return [variant_playlist_uri(rung) for rung in ladder]


def _filter_graph(ladder: Sequence[Rung]) -> str:
    splits = "".join(f"[s{index}]" for index in range(len(ladder)))
    scales = ";".join(
        f"[s{index}]scale={rung.width}:{rung.height},format=yuv420p[v{index}]"
        for index, rung in enumerate(ladder)
    )
    return f"[0:v:0]split={len(ladder)}{splits};{scales}"


def _stream_map(ladder: Sequence[Rung], *, with_audio: bool) -> str:
    """``v:0,a:0,name:360p v:1,a:1,name:720p``: output streams grouped per rendition."""
    entries = []
    for index, rung in enumerate(ladder):
        audio = f"a:{index}," if with_audio else ""
        entries.append(f"v:{index},{audio}name:{rung.name}")
    return " ".join(entries)


def hls_encode_command(
    source: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    probe: Probe,
    ladder: Sequence[Rung] | None = None,
    ffmpeg: str = "ffmpeg",
    preset: str = DEFAULT_PRESET,
    threads: int | None = None,
    stats_period: float = DEFAULT_STATS_PERIOD,
) -> list[str]:
    """One ffmpeg run writing the HLS VOD ladder for ``source`` into ``output_dir``.

    ``ladder`` defaults to :func:`choose_ladder` for the probed size. ``output_dir`` must
    exist (ffmpeg creates the per-rendition subdirectories). ``threads`` caps the encoders'
    threads (``None`` lets ffmpeg choose: about one per core). Progress blocks come every
    ``stats_period`` seconds on stdout.
    """
    rungs = tuple(ladder) if ladder is not None else choose_ladder(probe.width, probe.height)
    if not rungs:
        raise ValueError("the ladder has no rendition")
    names = [rung.name for rung in rungs]
    if len(set(names)) != len(names):
        raise ValueError(f"rendition names repeat: {names}")
    out = Path(output_dir).absolute()

    command = [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-nostats",
        "-progress",
        "pipe:1",
        "-stats_period",
        f"{stats_period:g}",
        "-y",
    ]
    command += ["-i", _input(source), "-filter_complex", _filter_graph(rungs)]
    for index in range(len(rungs)):
        command += ["-map", f"[v{index}]"]
    if probe.has_audio:
        for _ in rungs:
            command += ["-map", "0:a:0"]

    command += [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-profile:v",
        "high",
        "-force_key_frames",
        f"expr:gte(t,n_forced*{SEGMENT_SECONDS})",
        "-sc_threshold",
        "0",
    ]
    if threads is not None:
        command += ["-threads", str(threads)]
    for index, rung in enumerate(rungs):
        command += [
            f"-b:v:{index}",
            f"{rung.video_kbps}k",
            f"-maxrate:v:{index}",
            f"{rung.maxrate_kbps}k",
            f"-bufsize:v:{index}",
            f"{rung.bufsize_kbps}k",
        ]
    if probe.has_audio:
        command += ["-c:a", "aac", "-ac", "2", "-ar", str(AUDIO_SAMPLE_RATE)]
        for index, rung in enumerate(rungs):
            command += [f"-b:a:{index}", f"{rung.audio_kbps}k"]

    command += [
        "-f",
        "hls",
        "-hls_time",
        str(SEGMENT_SECONDS),
        "-hls_playlist_type",
        "vod",
        "-hls_flags",
        "independent_segments+temp_file",
        "-hls_segment_type",
        "mpegts",
        "-hls_segment_filename",
        str(out / "%v" / SEGMENT_PATTERN),
        "-master_pl_name",
        MASTER_PLAYLIST,
        "-var_stream_map",
        _stream_map(rungs, with_audio=probe.has_audio),
        str(out / "%v" / VARIANT_PLAYLIST),
    ]
    return command
