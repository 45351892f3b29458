"""ffprobe's JSON into a Probe, and the typed errors a teacher reads."""

from __future__ import annotations

from typing import Any

import pytest

from domains.videos import messages as m
from domains.videos.probe import (
    ProbeError,
    ProbeNoDuration,
    ProbeNoVideo,
    ProbeUnreadable,
    parse_probe,
)
from tests.unit.videos.samples import audio_stream, ffprobe_json, video_stream


def test_a_landscape_file_with_sound() -> None:
    # given
    output = ffprobe_json(video_stream(1920, 1080, frame_rate="30000/1001"), audio_stream())

    # when
    probe = parse_probe(output.encode())

    # then
    assert (probe.width, probe.height, probe.rotation) == (1920, 1080, 0)
    assert probe.duration == pytest.approx(4.0)
    assert probe.fps == pytest.approx(29.97, abs=0.01)
    assert (probe.video_codec, probe.audio_codec, probe.has_audio) == ("h264", "aac", True)
    assert not probe.is_portrait
    assert probe.short_side == 1080


@pytest.mark.parametrize(
    ("stream", "rotation"),
    [
        (video_stream(1920, 1080, rotation=-90), 270),
        (video_stream(1920, 1080, rotation=90), 90),
        (video_stream(1920, 1080, rotate_tag="90"), 90),
    ],
)
def test_a_phone_video_stored_sideways_is_portrait(stream: dict[str, Any], rotation: int) -> None:
    # given landscape frames with a display rotation (side data, or the older rotate tag)
    output = ffprobe_json(stream, audio_stream())

    # when
    probe = parse_probe(output)

    # then the displayed size
    assert (probe.width, probe.height) == (1080, 1920)
    assert probe.rotation == rotation
    assert probe.is_portrait


def test_upside_down_keeps_the_size() -> None:
    # given
    output = ffprobe_json(video_stream(1280, 720, rotation=180))

    # when
    probe = parse_probe(output)

    # then
    assert (probe.width, probe.height, probe.rotation) == (1280, 720, 180)


def test_a_silent_video_has_no_audio() -> None:
    # given
    output = ffprobe_json(video_stream(640, 360))

    # when
    probe = parse_probe(output)

    # then
    assert probe.audio_codec is None
    assert not probe.has_audio


def test_the_stream_duration_stands_in_for_a_missing_container_duration() -> None:
    # given
    output = ffprobe_json(video_stream(), duration=None)

    # when
    probe = parse_probe(output)

    # then
    assert probe.duration == pytest.approx(4.0)


def test_an_unknown_frame_rate_is_none() -> None:
    # given
    output = ffprobe_json(video_stream(frame_rate="0/0"))

    # when
    probe = parse_probe(output)

    # then
    assert probe.fps is None


def test_audio_only_has_no_video_stream() -> None:
    # given
    output = ffprobe_json(audio_stream("mp3"), format_name="mp3")

    # when
    with pytest.raises(ProbeNoVideo) as raised:
        parse_probe(output)

    # then
    assert raised.value.code == "video_no_video_stream"
    assert raised.value.message is m.NO_VIDEO_STREAM
    assert "audio" in raised.value.detail


def test_cover_art_is_not_a_video() -> None:
    # given an mp3 with an embedded picture
    output = ffprobe_json(audio_stream("mp3"), video_stream(500, 500, attached_pic=1, codec="png"))

    # when / then
    with pytest.raises(ProbeNoVideo):
        parse_probe(output)


@pytest.mark.parametrize("duration", ["0.000000", "N/A", None])
def test_a_zero_or_absent_duration_is_refused(duration: str | None) -> None:
    # given a still image (no duration anywhere) or a zero-length container
    stream = video_stream(64, 48, codec="png")
    del stream["duration"]
    output = ffprobe_json(stream, duration=duration)

    # when / then
    with pytest.raises(ProbeNoDuration) as raised:
        parse_probe(output)
    assert raised.value.code == "video_no_duration"


@pytest.mark.parametrize(
    ("output", "returncode", "stderr"),
    [
        ("{\n\n}\n", 1, "source: Invalid data found when processing input"),
        ("", 0, ""),
        ("{\n\n}\n", 0, ""),
        ('{"streams": [', 0, ""),
        ('{"format": {"duration": "4.0"}}', 0, ""),
        ("[]", 0, ""),
    ],
)
def test_unreadable_output_is_a_typed_error(output: str, returncode: int, stderr: str) -> None:
    # when
    with pytest.raises(ProbeUnreadable) as raised:
        parse_probe(output, returncode=returncode, stderr=stderr)

    # then
    assert raised.value.code == "video_unreadable"
    if stderr:
        assert "Invalid data" in raised.value.detail


def test_a_video_stream_without_a_size_is_unreadable() -> None:
    # given
    stream = video_stream()
    del stream["width"]

    # when / then
    with pytest.raises(ProbeUnreadable):
        parse_probe(ffprobe_json(stream))


def test_every_error_speaks_korean_and_english() -> None:
    # given
    errors: list[ProbeError] = [ProbeUnreadable("x"), ProbeNoVideo("x"), ProbeNoDuration("x")]

    # when
    texts = [(error.message.text("ko-kr"), error.message.text("en")) for error in errors]

    # then distinct codes, Korean text for Korean, English otherwise
    assert len({error.code for error in errors}) == 3
    for korean, english in texts:
        assert any("\uac00" <= character <= "\ud7a3" for character in korean)
        assert english.isascii()
