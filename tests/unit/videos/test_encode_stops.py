"""Why an encode stops: the lost job before a cancel request, each its own exception. Pure:
the encode's run state on a stand-in progress port, no database, no ffmpeg."""

from __future__ import annotations

import time
import uuid

import pytest

from domains.videos.models import Video
from domains.videos.services import EncodeCancelled, EncodeStopped, _Run


class Port:
    """The encode's progress port as a test sets it."""

    def __init__(self, *, lost: bool = False, cancelled: bool = False) -> None:
        self.lost = lost
        self.cancelled = cancelled

    def report(self, *, step: str, percent: float | None, remaining_seconds: float | None) -> None:
        return None

    def stop_reason(self) -> str | None:
        return "the attempt lost its job" if self.lost else None

    def cancel_requested(self) -> bool:
        return self.cancelled


def _run(port: Port) -> _Run:
    video = Video(video_id=uuid.uuid4(), tenant_id=1, session_id=1, file_key="k")
    return _Run(1, video, uuid.uuid4(), 1, port, deadline=time.monotonic() + 3600)


@pytest.mark.parametrize(
    ("port", "reason", "raised"),
    [
        (Port(), None, None),
        (Port(cancelled=True), "cancel requested", EncodeCancelled),
        (Port(lost=True), "the attempt lost its job", EncodeStopped),
        (Port(lost=True, cancelled=True), "the attempt lost its job", EncodeStopped),
    ],
)
def test_ffmpeg_is_stopped_for_a_lost_job_first_then_for_a_cancel_request(
    port: Port, reason: str | None, raised: type[Exception] | None
) -> None:
    # given an encode whose job is kept, cancelled, lost, or both
    run = _run(port)

    # when ffmpeg's supervisor asks whether to stop, and the encode checks between steps
    asked = run.stop_reason()

    # then a lost job wins (its new owner decides), a cancel alone ends the encode CANCELLED
    assert asked == reason
    if raised is None:
        run.check()
    else:
        with pytest.raises(raised):
            run.check()
