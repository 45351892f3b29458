"""The ffmpeg process runner on stand-in processes (Python scripts), the disk rule, the keys."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from django.utils import translation

from domains.videos import encoder
from domains.videos import messages as m
from domains.videos.ladder import choose_ladder
from domains.videos.services import TEACHER_TEXTS
from domains.videos.storage import video_keys

BLOCK = "frame=10\nout_time_us={us}\nspeed=1.5x\nprogress={state}\n"


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", body]


def test_a_run_reports_every_block_and_keeps_a_bounded_stderr_tail() -> None:
    # given a process writing two progress blocks and 1 MB of stderr (more than a pipe holds)
    body = (
        "import sys\n"
        f"sys.stdout.write({BLOCK.format(us=1_000_000, state='continue')!r}); sys.stdout.flush()\n"
        "for i in range(20000): sys.stderr.write('warning line %05d ' % i + 'x' * 40 + '\\n')\n"
        f"sys.stdout.write({BLOCK.format(us=2_000_000, state='end')!r})\n"
    )
    blocks = []

    # when it runs to its end
    run = encoder.run_encode(
        _script(body), on_progress=blocks.append, should_stop=lambda: None, deadline=1e18
    )

    # then both blocks arrived, the last ended, and only the last 50 stderr lines are kept
    assert [b.out_time_s for b in blocks] == [1.0, 2.0]
    assert (run.returncode, run.stopped, run.ended) == (0, None, True)
    lines = run.stderr_tail.splitlines()
    assert len(lines) == encoder.STDERR_TAIL_LINES
    assert lines[-1].startswith("warning line 19999")


def test_a_stop_request_terminates_the_process_and_says_why() -> None:
    # given a process that reports once and would then run forever
    body = (
        "import sys, time\n"
        f"sys.stdout.write({BLOCK.format(us=500_000, state='continue')!r}); sys.stdout.flush()\n"
        "time.sleep(600)\n"
    )
    blocks = []

    # when the caller asks it to stop once a block arrived
    run = encoder.run_encode(
        _script(body),
        on_progress=blocks.append,
        should_stop=lambda: "lost the job" if blocks else None,
        deadline=1e18,
    )

    # then it was stopped by SIGTERM for that reason
    assert run.stopped == "lost the job"
    assert run.returncode == -15
    assert not run.ended


def test_a_process_ignoring_sigterm_is_killed_at_the_deadline() -> None:
    # given a process that ignores SIGTERM (and says so with a block), and a clock that passes
    # the deadline once that block arrived
    body = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"sys.stdout.write({BLOCK.format(us=500_000, state='continue')!r}); sys.stdout.flush()\n"
        "time.sleep(600)\n"
    )
    blocks: list[object] = []

    # when it runs
    run = encoder.run_encode(
        _script(body),
        on_progress=blocks.append,
        should_stop=lambda: None,
        deadline=5.0,
        clock=lambda: 10.0 if blocks else 0.0,
        term_grace=0.5,
    )

    # then the time limit stopped it, with SIGKILL after the grace
    assert run.stopped == "time limit"
    assert run.returncode == -9


def test_the_disk_check_refuses_what_does_not_fit(tmp_path: Path) -> None:
    # given the free space of the test's disk
    free = encoder.free_bytes(tmp_path)

    # when a job needs more than that, or much less
    with pytest.raises(encoder.DiskTooFull) as refused:
        encoder.disk_check(tmp_path, needed=free + 10**12)
    encoder.disk_check(tmp_path, needed=1)

    # then only the first is refused, saying both numbers
    assert refused.value.needed == free + 10**12
    assert "are free" in str(refused.value)


def test_the_output_estimate_follows_the_ladder_bit_rates() -> None:
    # given a 720p source's ladder (360p 800+128 kb/s, 720p 2800+128 kb/s) and one hour
    ladder = choose_ladder(1280, 720)

    # when its output is estimated
    estimate = encoder.output_bytes_estimate(ladder, 3600)

    # then it is the bit rates times the duration, plus the container overhead
    assert estimate == int((928 + 2928) * 1000 / 8 * 3600 * encoder.OUTPUT_OVERHEAD)


def test_every_key_of_a_video_is_under_its_tenant() -> None:
    # given a video of tenant 7
    video_id = uuid.UUID("3f2b8a1c-0d4e-4c6b-9a51-2e7f10b4c8d9")
    keys = video_keys(7, video_id)

    # when its keys are built and foreign keys are checked
    built = (keys.source, keys.outputs, keys.attempt(2))

    # then they follow the layout, and other tenants' or escaping keys are not its own
    assert built == (
        f"uploads/7/{video_id}/source",
        f"videos/7/{video_id}/",
        f"videos/7/{video_id}/2/",
    )
    assert keys.owns(f"videos/7/{video_id}/2/master.m3u8")
    assert not keys.owns(f"videos/8/{video_id}/2/master.m3u8")
    assert not keys.owns(f"videos/7/{video_id}/../other/1/master.m3u8")
    with pytest.raises(ValueError, match="attempts count from 1"):
        keys.attempt(0)


@pytest.mark.parametrize(
    "message",
    [
        m.UNREADABLE,
        m.NO_VIDEO_STREAM,
        m.NO_DURATION,
        m.ENCODE_FAILED,
        m.OUTPUT_INVALID,
        m.TIMED_OUT,
        m.SOURCE_MISSING,
    ],
)
def test_the_gettext_texts_match_the_messages_in_english_and_korean(message: m.Message) -> None:
    # given a teacher-facing message of the encoder
    text = TEACHER_TEXTS[message.code]

    # when it is read in English and in Korean
    with translation.override("en"):
        english = str(text)
    with translation.override("ko"):
        korean = str(text)

    # then both are the module's own texts
    assert (english, korean) == (message.en, message.ko)
