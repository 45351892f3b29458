"""The progress throttle, driven by a fake clock (no thread)."""

import itertools
import uuid

from realtime.keys import Topic
from realtime.state import Change, Progress
from realtime.throttle import ProgressThrottle

TOPIC = Topic.job(uuid.uuid4())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _throttle() -> tuple[ProgressThrottle, Clock, list[Change]]:
    published: list[Change] = []
    clock = Clock()
    throttle = ProgressThrottle(
        lambda tenant, topic, change: published.append(change),
        interval=0.2,
        clock=clock,
        auto_flush=False,
    )
    return throttle, clock, published


def _percent(value: float) -> Change:
    return Change(progress=Progress(percent=value))


def test_a_burst_of_progress_publishes_the_first_and_then_the_latest() -> None:
    # given a throttle on a fake clock
    throttle, clock, published = _throttle()

    # when fifty progress updates arrive a millisecond apart and the interval passes
    for percent in range(1, 51):
        throttle.submit(1, TOPIC, _percent(percent))
        clock.now += 0.001
    clock.now += 0.2
    throttle.flush_due()

    # then the first and the last are published, nothing between
    assert [c.progress.percent for c in published if c.progress] == [1, 50]


def test_at_most_one_progress_publish_per_interval_and_the_last_value_arrives() -> None:
    # given a recording publish on a fake clock
    times: list[float] = []
    values: list[float] = []
    clock = Clock()

    def record(tenant: int, topic: Topic, change: Change) -> None:
        times.append(clock.now)
        values.append(change.progress.percent if change.progress else -1)

    throttle = ProgressThrottle(record, interval=0.2, clock=clock, auto_flush=False)

    # when 5 s of updates arrive every 50 ms
    for step in range(100):  # 5 s of updates every 50 ms: at most 26 publishes
        throttle.submit(1, TOPIC, _percent(step))
        clock.now += 0.05
        throttle.flush_due()
    clock.now += 0.2
    throttle.flush_due()

    # then publishes are at least one interval apart and the last value arrives
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.2 - 1e-9
    assert 20 <= len(times) <= 26
    assert values[-1] == 99


def test_status_changes_are_never_delayed_and_carry_pending_progress() -> None:
    # given a throttle holding a pending progress update
    throttle, clock, published = _throttle()
    throttle.submit(1, TOPIC, _percent(10))
    clock.now += 0.05
    throttle.submit(1, TOPIC, _percent(20))  # pending

    # when the status changes
    throttle.submit(1, TOPIC, Change(status="PROCESSING", attempt=2))

    # then it is published at once with the pending progress, and nothing stays due
    assert published[-1].status == "PROCESSING"
    assert published[-1].progress == Progress(percent=20)
    assert throttle.next_due() is None


def test_a_terminal_change_drops_pending_progress() -> None:
    # given a throttle holding a pending progress update
    throttle, clock, published = _throttle()
    throttle.submit(1, TOPIC, _percent(10))
    throttle.submit(1, TOPIC, _percent(90))  # pending

    # when the job reaches a terminal state and time passes
    throttle.submit(1, TOPIC, Change(status="DONE"))
    clock.now += 1
    throttle.flush_due()

    # then the pending progress is never published
    assert [c.status for c in published] == [None, "DONE"]
    assert published[-1].progress is None


def test_topics_are_throttled_independently() -> None:
    # given a throttle and another topic
    throttle, _clock, published = _throttle()
    other = Topic.job(uuid.uuid4())

    # when one update arrives for each topic and for the same topic id in another tenant
    throttle.submit(1, TOPIC, _percent(10))
    throttle.submit(1, other, _percent(10))
    throttle.submit(2, TOPIC, _percent(10))  # same topic id, another tenant

    # then each is published at once
    assert len(published) == 3


def test_a_failing_publish_does_not_raise_into_the_job() -> None:
    # given a publish that always fails
    def broken(tenant: int, topic: Topic, change: Change) -> None:
        raise ConnectionError("redis down")

    throttle = ProgressThrottle(broken, interval=0.2, auto_flush=False)

    # when/then submitting progress raises nothing into the job
    throttle.submit(1, TOPIC, _percent(10))  # no exception


def test_the_background_thread_flushes_the_latest_value() -> None:
    # given a throttle with its background flush thread
    import threading

    done = threading.Event()
    published: list[Change] = []

    def record(tenant: int, topic: Topic, change: Change) -> None:
        published.append(change)
        if change.progress and change.progress.percent == 99:
            done.set()

    throttle = ProgressThrottle(record, interval=0.05)

    # when two updates arrive within one interval
    try:
        throttle.submit(1, TOPIC, _percent(1))
        throttle.submit(1, TOPIC, _percent(99))

        # then the thread publishes the first at once and the latest after the interval
        assert done.wait(2)
    finally:
        throttle.close()
    assert [c.progress.percent for c in published if c.progress] == [1, 99]
