"""argv for ffprobe and for the one ffmpeg process that writes the HLS ladder."""

from __future__ import annotations

from pathlib import Path

import pytest

from domains.videos.ffmpeg import ffprobe_command, hls_encode_command, variant_playlist_uris
from domains.videos.ladder import choose_ladder
from domains.videos.probe import Probe


def _probe(width: int = 1280, height: int = 720, *, audio: str | None = "aac") -> Probe:
    return Probe(
        duration=4.0,
        width=width,
        height=height,
        rotation=0,
        fps=30.0,
        video_codec="h264",
        audio_codec=audio,
        format_name="mov,mp4",
    )


def _value(command: list[str], option: str) -> str:
    return command[command.index(option) + 1]


def _values(command: list[str], option: str) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == option]


def test_ffprobe_prints_format_and_streams_as_json_of_a_plain_file(tmp_path: Path) -> None:
    # given a file name that looks like an option and a protocol
    source = tmp_path / "-i concat:x.mp4"

    # when
    command = ffprobe_command(source, ffprobe="/usr/bin/ffprobe")

    # then
    assert command[:7] == [
        "/usr/bin/ffprobe",
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ]
    assert command[-1] == f"file:{source}"


def test_one_process_writes_every_rung_with_audio(tmp_path: Path) -> None:
    # given
    probe = _probe(1280, 720)

    # when
    command = hls_encode_command(tmp_path / "source", tmp_path / "out", probe=probe)

    # then one input, split once, scaled per rung
    assert command[0] == "ffmpeg"
    assert _values(command, "-i") == [f"file:{tmp_path / 'source'}"]
    assert _value(command, "-filter_complex") == (
        "[0:v:0]split=2[s0][s1];"
        "[s0]scale=640:360,format=yuv420p[v0];[s1]scale=1280:720,format=yuv420p[v1]"
    )
    assert _values(command, "-map") == ["[v0]", "[v1]", "0:a:0", "0:a:0"]
    assert _value(command, "-var_stream_map") == "v:0,a:0,name:360p v:1,a:1,name:720p"
    assert (_value(command, "-b:v:0"), _value(command, "-b:v:1")) == ("800k", "2800k")
    assert (_value(command, "-maxrate:v:1"), _value(command, "-bufsize:v:1")) == (
        "2996k",
        "4200k",
    )
    assert _value(command, "-c:a") == "aac"
    assert _value(command, "-b:a:1") == "128k"


def test_hls_vod_with_6_second_segments_and_forced_keyframes(tmp_path: Path) -> None:
    # when
    command = hls_encode_command(tmp_path / "source", tmp_path / "out", probe=_probe())

    # then
    assert _value(command, "-force_key_frames") == "expr:gte(t,n_forced*6)"
    assert _value(command, "-sc_threshold") == "0"
    assert _value(command, "-f") == "hls"
    assert _value(command, "-hls_time") == "6"
    assert _value(command, "-hls_playlist_type") == "vod"
    assert _value(command, "-hls_segment_filename") == str(tmp_path / "out/%v/seg_%05d.ts")
    assert _value(command, "-master_pl_name") == "master.m3u8"
    assert command[-1] == str(tmp_path / "out/%v/index.m3u8")
    assert "temp_file" in _value(command, "-hls_flags").split("+")


def test_progress_goes_to_stdout_and_nothing_reads_stdin(tmp_path: Path) -> None:
    # when
    command = hls_encode_command(tmp_path / "s", tmp_path / "o", probe=_probe(), stats_period=0.5)

    # then
    assert _value(command, "-progress") == "pipe:1"
    assert "-nostats" in command
    assert "-nostdin" in command
    assert _value(command, "-stats_period") == "0.5"
    assert command.index("-progress") < command.index("-i")


def test_a_silent_source_maps_no_audio(tmp_path: Path) -> None:
    # when
    command = hls_encode_command(tmp_path / "s", tmp_path / "o", probe=_probe(audio=None))

    # then
    assert _values(command, "-map") == ["[v0]", "[v1]"]
    assert _value(command, "-var_stream_map") == "v:0,name:360p v:1,name:720p"
    assert "-c:a" not in command
    assert not any(part.startswith("-b:a") for part in command)


def test_a_portrait_source_is_scaled_by_its_short_side(tmp_path: Path) -> None:
    # when
    command = hls_encode_command(tmp_path / "s", tmp_path / "o", probe=_probe(1080, 1920))

    # then
    graph = _value(command, "-filter_complex")
    assert "scale=360:640" in graph
    assert "scale=720:1280" in graph
    assert "scale=1080:1920" in graph
    assert _value(command, "-var_stream_map").split() == [
        "v:0,a:0,name:360p",
        "v:1,a:1,name:720p",
        "v:2,a:2,name:1080p",
    ]


def test_a_given_ladder_and_threads_are_used(tmp_path: Path) -> None:
    # given only the lowest rung of a 1080p source
    ladder = choose_ladder(1920, 1080)[:1]

    # when
    command = hls_encode_command(
        tmp_path / "s", tmp_path / "o", probe=_probe(1920, 1080), ladder=ladder, threads=2
    )

    # then
    assert _value(command, "-filter_complex").startswith("[0:v:0]split=1[s0];")
    assert _value(command, "-threads") == "2"
    assert command.index("-threads") > command.index("-i")


def test_an_empty_ladder_is_refused(tmp_path: Path) -> None:
    # when / then
    with pytest.raises(ValueError, match="no rendition"):
        hls_encode_command(tmp_path / "s", tmp_path / "o", probe=_probe(), ladder=())


def test_the_expected_variant_uris_follow_the_ladder() -> None:
    # when
    uris = variant_playlist_uris(choose_ladder(1280, 720))

    # then
    assert uris == ["360p/index.m3u8", "720p/index.m3u8"]


def test_every_argument_is_a_separate_string(tmp_path: Path) -> None:
    # when
    command = hls_encode_command(tmp_path / "with space", tmp_path / "o", probe=_probe())

    # then no shell quoting anywhere: the path with a space is one argument
    assert all(isinstance(part, str) for part in command)
    assert f"file:{tmp_path / 'with space'}" in command
