"""Our ffprobe/ffmpeg commands, progress parser and HLS validation against real ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from domains.videos.ffmpeg import variant_playlist_uris
from domains.videos.ffprogress import RUNNING_CEILING, ProgressEstimator
from domains.videos.hls import HlsInvalid, content_type, parse_master, validate_output
from domains.videos.ladder import choose_ladder
from domains.videos.probe import ProbeError, ProbeNoDuration, ProbeNoVideo, ProbeUnreadable
from tests.integration.videos.media import encode, probe_file

pytestmark = pytest.mark.slow


def test_a_landscape_clip_becomes_a_valid_two_rung_ladder(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    # given
    probe = probe_file(clips["landscape"])
    ladder = choose_ladder(probe.width, probe.height)

    # when
    encoded = encode(clips["landscape"], tmp_path / "out", probe=probe, ladder=ladder)

    # then ffmpeg's own report went through the parser: times never go back, the last ends
    assert encoded.returncode == 0, encoded.stderr
    assert (probe.width, probe.height, probe.has_audio) == (1280, 720, True)
    assert probe.duration == pytest.approx(5.0, abs=0.1)
    assert [rung.name for rung in ladder] == ["360p", "720p"]
    times = [block.out_time_s for block in encoded.blocks if block.out_time_s is not None]
    assert times == sorted(times)
    assert [block.ended for block in encoded.blocks][-1:] == [True]
    assert sum(block.ended for block in encoded.blocks) == 1
    estimator = ProgressEstimator(probe.duration)
    percents = [estimator.update(block).percent for block in encoded.blocks]
    assert percents[-1] == RUNNING_CEILING
    known = [percent for percent in percents if percent is not None]
    assert known == sorted(known)

    # and the output is whole, with the rungs' sizes, and every file has a content type
    output = validate_output(
        tmp_path / "out", expected_variants=variant_playlist_uris(ladder), duration=probe.duration
    )
    for total in output.durations.values():
        assert total == pytest.approx(probe.duration, abs=0.5)
    master = parse_master((tmp_path / "out/master.m3u8").read_text())
    assert [variant.resolution for variant in master.variants] == [(640, 360), (1280, 720)]
    assert all("mp4a" in (variant.codecs or "") for variant in master.variants)
    assert {content_type(path) for path in output.upload_order} == {
        "video/mp2t",
        "application/vnd.apple.mpegurl",
    }
    assert output.upload_order[-1] == "master.m3u8"


@pytest.mark.parametrize(
    ("clip", "rotation", "size"),
    [("portrait", 0, (360, 640)), ("rotated", 90, (240, 320))],
)
def test_portrait_sources_keep_their_orientation(
    clips: dict[str, Path], tmp_path: Path, clip: str, rotation: int, size: tuple[int, int]
) -> None:
    # given a portrait clip, and landscape frames stored with a 90 degree rotation
    probe = probe_file(clips[clip])
    ladder = choose_ladder(probe.width, probe.height)

    # when
    encoded = encode(clips[clip], tmp_path / "out", probe=probe, ladder=ladder)

    # then
    assert encoded.returncode == 0, encoded.stderr
    assert ((probe.width, probe.height), probe.rotation) == (size, rotation)
    assert [(rung.width, rung.height) for rung in ladder] == [size]
    validate_output(
        tmp_path / "out", expected_variants=variant_playlist_uris(ladder), duration=probe.duration
    )
    master = parse_master((tmp_path / "out/master.m3u8").read_text())
    assert [variant.resolution for variant in master.variants] == [size]


def test_a_silent_clip_is_encoded_without_audio(clips: dict[str, Path], tmp_path: Path) -> None:
    # given
    probe = probe_file(clips["silent"])
    ladder = choose_ladder(probe.width, probe.height)

    # when
    encoded = encode(clips["silent"], tmp_path / "out", probe=probe, ladder=ladder)

    # then
    assert encoded.returncode == 0, encoded.stderr
    assert not probe.has_audio
    validate_output(
        tmp_path / "out", expected_variants=variant_playlist_uris(ladder), duration=probe.duration
    )
    master = parse_master((tmp_path / "out/master.m3u8").read_text())
    assert [variant.codecs for variant in master.variants] == ["avc1.64001e"]


@pytest.mark.parametrize(
    ("clip", "error", "code"),
    [
        ("empty", ProbeUnreadable, "video_unreadable"),
        ("random", ProbeUnreadable, "video_unreadable"),
        ("truncated", ProbeUnreadable, "video_unreadable"),
        ("text", ProbeUnreadable, "video_unreadable"),
        ("audio_only", ProbeNoVideo, "video_no_video_stream"),
        ("image", ProbeNoDuration, "video_no_duration"),
    ],
)
def test_files_that_cannot_be_encoded_get_a_typed_probe_error(
    clips: dict[str, Path], clip: str, error: type[ProbeError], code: str
) -> None:
    # when
    with pytest.raises(error) as raised:
        probe_file(clips[clip])

    # then
    assert raised.value.code == code
    assert raised.value.message.ko
    assert raised.value.detail


def test_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    # when
    with pytest.raises(ProbeUnreadable) as raised:
        probe_file(tmp_path / "never-uploaded.mp4")

    # then
    assert "No such file" in raised.value.detail


def test_a_cut_file_that_encodes_without_error_fails_validation(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    # given a faststart mp4 cut to a quarter: its index still promises 6 s
    probe = probe_file(clips["faststart_truncated"])
    ladder = choose_ladder(probe.width, probe.height)

    # when ffmpeg encodes what there is and exits 0
    encoded = encode(clips["faststart_truncated"], tmp_path / "out", probe=probe, ladder=ladder)

    # then only the validation notices
    assert probe.duration == pytest.approx(6.0, abs=0.1)
    assert encoded.returncode == 0
    with pytest.raises(HlsInvalid) as raised:
        validate_output(
            tmp_path / "out",
            expected_variants=variant_playlist_uris(ladder),
            duration=probe.duration,
        )
    assert raised.value.code == "video_output_invalid"
    assert "segments add up to" in raised.value.problems[0]
