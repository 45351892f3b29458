"""The progress port: steps, percent and the time-left estimate (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from domains.students.progress import ProgressTracker


@dataclass
class RecordingProgress:
    calls: list[tuple[str, int, int, float, float | None]] = field(default_factory=list)

    def __call__(
        self,
        step: str,
        step_index: int,
        step_total: int,
        percent: float,
        remaining_seconds: float | None,
    ) -> None:
        self.calls.append((step, step_index, step_total, percent, remaining_seconds))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steps_map_to_increasing_percentages_with_a_write_time_estimate() -> None:
    # given
    sink, clock = RecordingProgress(), FakeClock()
    tracker = ProgressTracker(sink, clock=clock)

    # when reading, classifying, then writing 4 chunks of 2 s each (reporting after 2)
    tracker.report("read", 0.0)
    tracker.report("read", 1.0)
    tracker.report("classify", 1.0)
    tracker.report("write", 0.0)
    clock.now += 4.0
    tracker.report("write", 0.5)

    # then
    assert sink.calls == [
        ("read", 1, 3, 0.0, None),
        ("read", 1, 3, 20.0, None),
        ("classify", 2, 3, 30.0, None),
        ("write", 3, 3, 30.0, None),
        ("write", 3, 3, 65.0, 4.0),
    ]


def test_no_sink_means_no_calls_and_no_errors() -> None:
    # given a tracker without a sink
    # when/then reporting does nothing and raises nothing
    ProgressTracker(None).report("write", 0.5)
