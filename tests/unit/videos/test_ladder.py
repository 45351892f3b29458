"""Which renditions a source gets: no upscaling, portrait by the short side, even sides."""

from __future__ import annotations

import pytest

from domains.videos.ladder import choose_ladder


def _shape(width: int, height: int) -> list[tuple[str, int, int]]:
    return [(rung.name, rung.width, rung.height) for rung in choose_ladder(width, height)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), [("360p", 640, 360), ("720p", 1280, 720), ("1080p", 1920, 1080)]),
        ((3840, 2160), [("360p", 640, 360), ("720p", 1280, 720), ("1080p", 1920, 1080)]),
        ((1280, 720), [("360p", 640, 360), ("720p", 1280, 720)]),
        ((854, 480), [("360p", 640, 360)]),
        ((640, 360), [("360p", 640, 360)]),
    ],
)
def test_landscape_sources_get_the_rungs_they_can_fill(
    size: tuple[int, int], expected: list[tuple[str, int, int]]
) -> None:
    # when
    shape = _shape(*size)

    # then
    assert shape == expected


def test_a_source_below_360p_gets_one_rendition_at_its_own_size() -> None:
    # when
    shape = _shape(320, 240)

    # then
    assert shape == [("240p", 320, 240)]


def test_an_odd_small_source_is_rounded_down_to_even_sides() -> None:
    # when
    shape = _shape(321, 179)

    # then
    assert shape == [("178p", 320, 178)]


def test_portrait_is_laddered_by_its_short_side() -> None:
    # when
    shape = _shape(1080, 1920)

    # then
    assert shape == [("360p", 360, 640), ("720p", 720, 1280), ("1080p", 1080, 1920)]


def test_a_portrait_720p_phone_video_is_not_upscaled() -> None:
    # when
    shape = _shape(720, 1280)

    # then
    assert shape == [("360p", 360, 640), ("720p", 720, 1280)]


def test_odd_aspect_ratios_keep_even_sides() -> None:
    # when
    rungs = choose_ladder(642, 362)

    # then
    assert [(rung.width, rung.height) for rung in rungs] == [(638, 360)]
    assert all(rung.width % 2 == 0 and rung.height % 2 == 0 for rung in rungs)


def test_bit_rates_grow_with_the_rung_and_are_constrained() -> None:
    # when
    rungs = choose_ladder(1920, 1080)

    # then
    assert [rung.video_kbps for rung in rungs] == [800, 2800, 5000]
    assert [(rung.maxrate_kbps, rung.bufsize_kbps) for rung in rungs] == [
        (856, 1200),
        (2996, 4200),
        (5350, 7500),
    ]
    assert {rung.audio_kbps for rung in rungs} == {128}


def test_a_tiny_source_gets_small_rates() -> None:
    # when
    (rung,) = choose_ladder(320, 240)

    # then
    assert (rung.video_kbps, rung.audio_kbps) == (400, 64)


@pytest.mark.parametrize("size", [(0, 1080), (1920, 0), (-2, 10)])
def test_a_size_that_is_not_positive_is_refused(size: tuple[int, int]) -> None:
    # when / then
    with pytest.raises(ValueError, match="positive"):
        choose_ladder(*size)
