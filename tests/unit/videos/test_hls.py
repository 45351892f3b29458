"""HLS output validation before READY, playlist rewriting for playback, content types."""

from __future__ import annotations

from pathlib import Path

import pytest

from domains.videos import messages as m
from domains.videos.hls import (
    HlsInvalid,
    PlaylistError,
    check_master,
    check_media,
    content_type,
    parse_master,
    parse_media,
    resolve_uri,
    rewrite_playlist,
    validate_output,
)
from tests.unit.videos.samples import master_playlist, media_playlist, write_output

VARIANTS = ["360p/index.m3u8", "720p/index.m3u8"]


def _problems(directory: Path, *, duration: float = 10.0) -> tuple[str, ...]:
    with pytest.raises(HlsInvalid) as raised:
        validate_output(directory, expected_variants=VARIANTS, duration=duration)
    assert raised.value.message is m.OUTPUT_INVALID
    return raised.value.problems


def test_a_complete_output_validates_and_lists_its_files_playlists_last(tmp_path: Path) -> None:
    # given
    write_output(tmp_path, {"360p": [6.0, 4.0], "720p": [6.0, 4.0]})

    # when
    output = validate_output(tmp_path, expected_variants=VARIANTS, duration=10.0)

    # then
    assert output.playlists == tuple(VARIANTS)
    assert output.durations == {"360p/index.m3u8": 10.0, "720p/index.m3u8": 10.0}
    assert output.upload_order == (
        "360p/seg_00000.ts",
        "360p/seg_00001.ts",
        "720p/seg_00000.ts",
        "720p/seg_00001.ts",
        "360p/index.m3u8",
        "720p/index.m3u8",
        "master.m3u8",
    )


def test_a_missing_variant_in_the_master_is_reported(tmp_path: Path) -> None:
    # given
    write_output(tmp_path, {"360p": [6.0, 4.0], "720p": [6.0, 4.0]})
    (tmp_path / "master.m3u8").write_text(master_playlist("360p"))

    # when
    problems = _problems(tmp_path)

    # then
    assert problems == ("master playlist: variant 720p/index.m3u8 is missing",)


def test_an_unfinished_variant_playlist_is_reported(tmp_path: Path) -> None:
    # given a run stopped before the end: no ENDLIST, and a 0-byte playlist for the other
    write_output(tmp_path, {"360p": [6.0, 4.0], "720p": [6.0, 4.0]})
    (tmp_path / "360p/index.m3u8").write_text(media_playlist([6.0, 4.0], ended=False))
    (tmp_path / "720p/index.m3u8").write_text("")

    # when
    problems = _problems(tmp_path)

    # then
    assert problems == (
        "360p/index.m3u8: no #EXT-X-ENDLIST, the playlist is unfinished",
        "720p/index.m3u8 is empty",
    )


def test_missing_and_empty_segments_are_reported(tmp_path: Path) -> None:
    # given
    write_output(tmp_path, {"360p": [6.0, 4.0], "720p": [6.0, 4.0]})
    (tmp_path / "360p/seg_00001.ts").unlink()
    (tmp_path / "720p/seg_00000.ts").write_bytes(b"")

    # when
    problems = _problems(tmp_path)

    # then
    assert problems == (
        "360p/index.m3u8: 360p/seg_00001.ts does not exist",
        "720p/index.m3u8: 720p/seg_00000.ts is empty",
    )


def test_segments_that_do_not_add_up_to_the_duration_are_reported(tmp_path: Path) -> None:
    # given an encode of a truncated source: 1.6 s of a 6 s video, well-formed otherwise
    write_output(tmp_path, {"360p": [1.6], "720p": [1.6]})

    # when
    problems = _problems(tmp_path, duration=6.0)

    # then
    assert len(problems) == 2
    assert problems[0] == (
        "360p/index.m3u8: segments add up to 1.600 s, the source lasts 6.000 s (tolerance 1.000 s)"
    )


def test_a_leftover_temporary_file_is_reported(tmp_path: Path) -> None:
    # given
    write_output(tmp_path, {"360p": [6.0, 4.0], "720p": [6.0, 4.0]})
    (tmp_path / "720p/seg_00002.ts.tmp").write_bytes(b"\x47")

    # when
    problems = _problems(tmp_path)

    # then
    assert problems == ("720p/seg_00002.ts.tmp is an unfinished temporary file",)


def test_a_missing_master_is_reported(tmp_path: Path) -> None:
    # given
    write_output(tmp_path, {"360p": [6.0, 4.0], "720p": [6.0, 4.0]})
    (tmp_path / "master.m3u8").unlink()

    # when
    problems = _problems(tmp_path)

    # then
    assert problems == ("master.m3u8 does not exist",)


def test_a_segment_outside_the_output_is_refused(tmp_path: Path) -> None:
    # given
    write_output(tmp_path / "out", {"360p": [6.0, 4.0], "720p": [6.0, 4.0]})
    (tmp_path / "secret.ts").write_bytes(b"x")
    text = media_playlist([6.0, 4.0]).replace("seg_00001.ts", "../../secret.ts")
    (tmp_path / "out/360p/index.m3u8").write_text(text)

    # when
    problems = _problems(tmp_path / "out")

    # then
    assert problems == (
        "360p/index.m3u8: '../../secret.ts' is not a relative path inside the output",
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (media_playlist([6.0, 4.0], playlist_type=None), "not a VOD playlist (type absent)"),
        (media_playlist([6.0, 4.0], playlist_type="EVENT"), "not a VOD playlist (type EVENT)"),
        (media_playlist([]), "no segments"),
        (media_playlist([8.0, 2.0]), "segment seg_00000.ts lasts 8.000 s, more than the target"),
        (media_playlist([6.0, 0.0, 4.0]), "segment seg_00001.ts has no positive #EXTINF"),
        (media_playlist([6.0, 4.0]).replace("4.000000", "x"), "has no positive #EXTINF"),
        ("#EXT-X-ENDLIST\n", "does not start with #EXTM3U"),
    ],
)
def test_broken_variant_playlists(text: str, problem: str) -> None:
    # when
    problems = check_media(text, duration=10.0, name="p")

    # then
    assert any(problem in found for found in problems), problems


def test_a_good_variant_playlist_has_no_problem() -> None:
    # when
    problems = check_media(media_playlist([6.0, 6.0, 0.5]), duration=12.6)

    # then
    assert problems == []


def test_long_videos_get_a_proportional_tolerance() -> None:
    # given 3 h of segments (10,783 s) against a probed duration 20 s longer
    durations = [6.0] * 1797 + [1.0]

    # when
    within = check_media(media_playlist(durations), duration=10_803.0)
    beyond = check_media(media_playlist(durations), duration=10_863.0)

    # then 0.5 % of 3 h is 54 s
    assert within == []
    assert len(beyond) == 1


def test_the_master_checks_duplicates_unexpected_variants_and_bandwidth() -> None:
    # given
    text = master_playlist("360p", "360p", "480p").replace("BANDWIDTH=3000000", "X=1")

    # when
    problems = check_master(text, ["360p/index.m3u8"])

    # then
    assert problems == [
        "master playlist: unexpected variant 480p/index.m3u8",
        "master playlist: variant 360p/index.m3u8 is listed 2 times",
        "master playlist: variant 480p/index.m3u8 has no BANDWIDTH",
    ]


def test_parsing_reads_the_attributes_and_segments() -> None:
    # when
    master = parse_master(master_playlist("360p"))
    media = parse_media(media_playlist([6.0, 1.5], init="init_360p.mp4"))

    # then
    (variant,) = master.variants
    assert (variant.uri, variant.bandwidth, variant.resolution) == (
        "360p/index.m3u8",
        1_000_000,
        (640, 360),
    )
    assert variant.codecs == "avc1.64001e,mp4a.40.2"
    assert [segment.uri for segment in media.segments] == ["seg_00000.ts", "seg_00001.ts"]
    assert media.total_duration == pytest.approx(7.5)
    assert (media.target_duration, media.playlist_type, media.ended) == (6, "VOD", True)
    assert media.init_uri == "init_360p.mp4"


def test_text_that_is_not_a_playlist_raises() -> None:
    # when / then
    with pytest.raises(PlaylistError):
        parse_media("<html>Not Found</html>")


def test_rewriting_replaces_every_uri_and_keeps_the_tags() -> None:
    # given
    text = media_playlist([6.0, 4.0], init="init.mp4")

    # when
    rewritten = rewrite_playlist(text, lambda uri: f"https://cdn.example/{uri}?X-Amz-Signature=s")

    # then
    assert rewritten.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-TARGETDURATION:6",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="https://cdn.example/init.mp4?X-Amz-Signature=s"',
        "#EXTINF:6.000000,",
        "https://cdn.example/seg_00000.ts?X-Amz-Signature=s",
        "#EXTINF:4.000000,",
        "https://cdn.example/seg_00001.ts?X-Amz-Signature=s",
        "#EXT-X-ENDLIST",
    ]


def test_rewriting_a_master_signs_its_variant_playlists() -> None:
    # given
    seen: list[str] = []

    def sign(uri: str) -> str:
        seen.append(uri)
        return f"/media/videos/7/{uri}?token=t"

    # when
    rewritten = rewrite_playlist(master_playlist("360p", "720p"), sign)

    # then
    assert seen == VARIANTS
    assert "/media/videos/7/720p/index.m3u8?token=t" in rewritten.splitlines()
    assert parse_master(rewritten).variants[0].bandwidth == 1_000_000


def test_a_signed_url_that_would_break_the_playlist_is_refused() -> None:
    # when / then
    with pytest.raises(ValueError, match="cannot go into a playlist"):
        rewrite_playlist(media_playlist([1.0]), lambda uri: 'x"\n#EXT-X-ENDLIST')


def test_uris_resolve_to_keys_under_the_attempt_prefix() -> None:
    # given
    prefix = "videos/1/abc/2"

    # when
    variant = resolve_uri(f"{prefix}/master.m3u8", "720p/index.m3u8")
    segment = resolve_uri(f"{prefix}/720p/index.m3u8", "seg_00003.ts", root=prefix)

    # then
    assert variant == f"{prefix}/720p/index.m3u8"
    assert segment == f"{prefix}/720p/seg_00003.ts"


@pytest.mark.parametrize(
    "uri", ["../../other/2/master.m3u8", "/etc/passwd", "https://evil.example/x.ts"]
)
def test_uris_that_leave_the_prefix_are_refused(uri: str) -> None:
    # when / then
    with pytest.raises(ValueError, match="does not stay under"):
        resolve_uri("videos/1/abc/2/720p/index.m3u8", uri, root="videos/1/abc/2")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("master.m3u8", "application/vnd.apple.mpegurl"),
        ("720p/seg_00001.ts", "video/mp2t"),
        ("720p/seg_00001.M4S", "video/iso.segment"),
        ("720p/init.mp4", "video/mp4"),
    ],
)
def test_content_types_by_extension(name: str, expected: str) -> None:
    # when / then
    assert content_type(name) == expected


def test_an_unknown_extension_has_no_content_type() -> None:
    # when / then
    with pytest.raises(ValueError, match="not an HLS output file"):
        content_type("720p/seg_00001.ts.tmp")
