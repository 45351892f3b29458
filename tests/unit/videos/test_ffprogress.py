"""The -progress parser and the percent/remaining-time estimate, on canned ffmpeg output."""

from __future__ import annotations

import pytest

from domains.videos.ffprogress import (
    RUNNING_CEILING,
    Progress,
    ProgressEstimator,
    ProgressParser,
    estimate,
    iter_progress,
)

# Two blocks as ffmpeg 5.1 writes them for an HLS ladder (first block: speed and times N/A).
TWO_BLOCKS = (
    "frame=0\nfps=0.00\nstream_0_0_q=0.0\nstream_0_1_q=0.0\nbitrate=N/A\ntotal_size=N/A\n"
    "out_time_us=N/A\nout_time_ms=N/A\nout_time=N/A\ndup_frames=0\ndrop_frames=0\n"
    "speed=N/A\nprogress=continue\n"
    "frame=129\nfps=128.39\nstream_0_0_q=29.0\nbitrate=N/A\ntotal_size=N/A\n"
    "out_time_us=4233333\nout_time_ms=4233333\nout_time=00:00:04.233333\ndup_frames=0\n"
    "drop_frames=0\nspeed=   4.21x\nprogress=end\n"
)


def _block(**fields: str) -> str:
    return "".join(f"{key}={value}\n" for key, value in fields.items())


def test_blocks_parse_into_typed_progress_with_na_as_none() -> None:
    # given
    parser = ProgressParser()

    # when
    blocks = parser.feed(TWO_BLOCKS.encode())

    # then
    first, last = blocks
    assert (first.out_time_s, first.speed, first.bitrate_kbps, first.total_size) == (
        None,
        None,
        None,
        None,
    )
    assert (first.frame, first.ended) == (0, False)
    assert last.out_time_s == pytest.approx(4.233333)
    assert last.speed == pytest.approx(4.21)
    assert (last.frame, last.fps, last.ended) == (129, pytest.approx(128.39), True)
    assert last.fields["stream_0_0_q"] == "29.0"
    assert parser.ended


def test_padded_speed_and_bitrate_are_read() -> None:
    # given
    text = _block(bitrate=" 181.7kbits/s", speed="  1.23x", out_time_us="1000000") + (
        "progress=continue\n"
    )

    # when
    (block,) = ProgressParser().feed(text)

    # then
    assert block.speed == pytest.approx(1.23)
    assert block.bitrate_kbps == pytest.approx(181.7)


def test_a_single_final_block_is_reported_as_ended() -> None:
    # given a job so short that ffmpeg's first report is its last
    text = _block(frame="100", out_time_us="3920000", speed="9.77x", progress="end")

    # when
    blocks = list(iter_progress([text.encode()]))

    # then
    assert len(blocks) == 1
    assert blocks[0].ended
    assert blocks[0].out_time_s == pytest.approx(3.92)


def test_out_time_ms_counts_microseconds_when_it_is_the_only_time() -> None:
    # given an output with neither out_time_us nor out_time (ffmpeg's misnamed key, trac #7345)
    text = _block(out_time_ms="2500000", progress="continue")

    # when
    (block,) = ProgressParser().feed(text)

    # then 2.5 s, not 2500 s
    assert block.out_time_s == pytest.approx(2.5)


def test_out_time_us_is_preferred_over_the_other_keys() -> None:
    # given keys that disagree (out_time_ms read as milliseconds would say 4233 s)
    text = _block(out_time_ms="9999999", out_time_us="4233333", out_time="00:00:05.000000")

    # when
    (block,) = ProgressParser().feed(text + "progress=continue\n")

    # then
    assert block.out_time_s == pytest.approx(4.233333)


def test_the_clock_form_is_used_when_out_time_us_is_absent() -> None:
    # given
    text = _block(out_time_ms="N/A", out_time="01:02:03.500000", progress="continue")

    # when
    (block,) = ProgressParser().feed(text)

    # then
    assert block.out_time_s == pytest.approx(3723.5)


@pytest.mark.parametrize(
    "fields",
    [
        {"out_time_ms": "-9223372036854775807", "out_time": "-577014:32:22"},
        {"out_time_us": "-21333", "out_time": "-00:00:00.021333"},
    ],
)
def test_negative_and_sentinel_times_are_unknown(fields: dict[str, str]) -> None:
    # given
    text = _block(**fields, progress="continue")

    # when
    (block,) = ProgressParser().feed(text)

    # then
    assert block.out_time_s is None


def test_lines_split_across_reads_are_joined() -> None:
    # given the two blocks cut into 7-byte pieces, with CRLF line ends
    data = TWO_BLOCKS.replace("\n", "\r\n").encode()
    pieces = [data[index : index + 7] for index in range(0, len(data), 7)]
    parser = ProgressParser()

    # when
    blocks = [block for piece in pieces for block in parser.feed(piece)]

    # then
    assert [block.ended for block in blocks] == [False, True]
    assert blocks[1].out_time_s == pytest.approx(4.233333)
    assert blocks[1].speed == pytest.approx(4.21)


def test_a_last_line_without_newline_is_parsed_on_close() -> None:
    # given
    parser = ProgressParser()
    early = parser.feed("out_time_us=1000000\nprogress=e")

    # when
    late = parser.feed("nd") + parser.close()

    # then
    assert early == []
    assert [block.ended for block in late] == [True]


def test_an_unfinished_block_is_never_reported() -> None:
    # given ffmpeg killed mid-block: no progress= line after the last keys
    text = _block(out_time_us="1000000", progress="continue") + _block(out_time_us="2000000")

    # when
    blocks = list(iter_progress([text]))

    # then
    assert [block.out_time_s for block in blocks] == [pytest.approx(1.0)]


def test_foreign_lines_are_ignored() -> None:
    # given stray text between keys
    text = "garbage without equals\n\n" + _block(out_time_us="500000", progress="continue")

    # when
    (block,) = ProgressParser().feed(text)

    # then
    assert block.out_time_s == pytest.approx(0.5)
    assert "garbage without equals" not in block.fields


def _progress(out_time_s: float | None, speed: float | None, *, ended: bool = False) -> Progress:
    return Progress(
        out_time_s=out_time_s,
        speed=speed,
        frame=None,
        fps=None,
        bitrate_kbps=None,
        total_size=None,
        dup_frames=None,
        drop_frames=None,
        ended=ended,
    )


def test_estimate_gives_percent_and_wall_seconds_left() -> None:
    # given 30 s of a 120 s source at twice realtime

    # when
    result = estimate(_progress(30.0, 2.0), 120.0)

    # then
    assert result.percent == pytest.approx(25.0)
    assert result.remaining_seconds == pytest.approx(45.0)


def test_estimate_is_clamped_below_100_until_ready() -> None:
    # given the last frame's time passing the container's duration
    overshoot = _progress(121.0, 2.0)

    # when
    running, final = estimate(overshoot, 120.0), estimate(_progress(119.9, 2.0, ended=True), 120.0)

    # then
    assert running.percent == RUNNING_CEILING
    assert running.remaining_seconds == 0.0
    assert (final.percent, final.remaining_seconds) == (RUNNING_CEILING, 0.0)


def test_estimate_without_duration_or_speed_says_unknown() -> None:
    # when
    no_duration = estimate(_progress(10.0, 2.0), None)
    no_speed = estimate(_progress(10.0, None), 100.0)

    # then
    assert (no_duration.percent, no_duration.remaining_seconds) == (None, None)
    assert no_speed.percent == pytest.approx(10.0)
    assert no_speed.remaining_seconds is None


def test_the_estimator_never_goes_backwards() -> None:
    # given
    estimator = ProgressEstimator(100.0)

    # when a later block reports an earlier time, then a block with no time at all
    percents = [
        estimator.update(block).percent
        for block in (_progress(40.0, 1.0), _progress(35.0, 1.0), _progress(None, 1.0))
    ]
    percents.append(estimator.update(_progress(60.0, 1.0)).percent)

    # then
    assert percents == [pytest.approx(40.0), pytest.approx(40.0), pytest.approx(40.0), 60.0]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_time_left_follows_the_recent_rate_not_the_slow_start() -> None:
    # given a 600 s video whose encode ran at 0.5x for its first 60 wall seconds and then at
    # 2x, while ffmpeg's speed (the average since the start) still says about 1x
    clock = _Clock()
    estimator = ProgressEstimator(600.0, clock=clock)
    media = 0.0
    for _ in range(60):
        clock.now += 1
        media += 0.5
        estimator.update(_progress(media, media / clock.now))
    for _ in range(30):
        clock.now += 1
        media += 2.0
        last = estimator.update(_progress(media, media / clock.now))

    # then the time left is what is left at 2x, not at ffmpeg's averaged speed
    averaged_left = (600.0 - media) / (media / clock.now)
    assert media == 90.0
    assert last.remaining_seconds == pytest.approx((600.0 - 90.0) / 2.0)
    assert averaged_left > 1.9 * last.remaining_seconds


def test_the_time_left_uses_ffmpegs_speed_until_the_window_has_two_seconds() -> None:
    # given
    clock = _Clock()
    estimator = ProgressEstimator(100.0, clock=clock)

    # when two blocks arrive within one wall second
    first = estimator.update(_progress(1.0, 2.0))
    clock.now += 1.0
    second = estimator.update(_progress(3.0, 2.0))

    # then both use the reported speed; the final block says 0 s left
    assert first.remaining_seconds == pytest.approx(99.0 / 2.0)
    assert second.remaining_seconds == pytest.approx(97.0 / 2.0)
    clock.now += 5.0
    assert estimator.update(_progress(None, None, ended=True)).remaining_seconds == 0.0
