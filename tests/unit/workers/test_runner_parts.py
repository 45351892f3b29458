"""The runner's parts without a database or a queue: the slot state machine, the heartbeat
arithmetic, the typed outcomes, the poller's stuck exit and the dead-letter sweep's bound.

Time is a fake clock the tests move by hand, so nothing here sleeps.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from rest_framework import serializers

from domains.jobs.dispatch import QueueKind
from domains.jobs.types import OPERATOR_ROLES, JobType
from realtime.throttle import ProgressThrottle
from workers.base import JobCancelled, JobProgress, JobRun, LeaseLost, PermanentError
from workers.config import Extension, queue_config
from workers.deadletters import DeadLetterSweep
from workers.outcomes import Cancelled, Done, Errored, Failed, Lost, attempt_run
from workers.poller import Poller
from workers.registry import Registered
from workers.slots import Slots, SlotState, SlotStateError
from workers.sqs import ReceivedMessage
from workers.stats import WorkerStats

CONFIG = replace(
    queue_config(QueueKind.MESSAGING),
    visibility_timeout=300,
    lease_seconds=240,
    heartbeat_interval=150.0,
    max_runtime=1800.0,
    max_visibility=1920,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeQueue:
    """A queue that hands out ``bodies`` in batches and records what the caller did."""

    url = "fake://queue"

    def __init__(self, bodies: Sequence[str] = (), *, clock: FakeClock | None = None) -> None:
        self.bodies = list(bodies)
        self.clock = clock or FakeClock()
        self.receives = 0
        self.released: list[ReceivedMessage] = []
        self.deleted: list[ReceivedMessage] = []

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int
    ) -> list[ReceivedMessage]:
        self.receives += 1
        batch, self.bodies = self.bodies[:max_messages], self.bodies[max_messages:]
        return [_message(body, at=self.clock()) for body in batch]

    def delete(self, message: ReceivedMessage) -> bool:
        self.deleted.append(message)
        return True

    def delete_many(self, messages: Sequence[ReceivedMessage]) -> int:
        self.deleted += messages
        return len(messages)

    def extend(self, message: ReceivedMessage, seconds: int) -> None:
        return None

    def release(self, message: ReceivedMessage, delay: int = 0) -> bool:
        self.released.append(message)
        return True

    def release_many(self, messages: Sequence[ReceivedMessage]) -> int:
        self.released += messages
        return len(messages)

    def depth(self) -> int | None:
        return len(self.bodies)


def _message(body: str = "{}", *, at: float = 1000.0) -> ReceivedMessage:
    return ReceivedMessage(
        message_id=uuid.uuid4().hex,
        receipt_handle=uuid.uuid4().hex,
        body=body,
        receive_count=1,
        received_at=at,
    )


def _run(job_type: str = "test.unit") -> JobRun:
    return JobRun(
        job_id=uuid.uuid4(),
        tenant_id=7,
        job_type=job_type,
        payload={"label": "x"},
        attempt=1,
        owner_id=1,
        kind=QueueKind.MESSAGING,
        receive_count=1,
    )


# --- slots ------------------------------------------------------------------------------------
def test_a_slot_moves_claiming_running_finishing_and_its_time_limit_counts_from_the_claim() -> None:
    # given a slot received at t=1000 and claimed at t=1002
    clock = FakeClock(1000.0)
    slots = Slots(2, clock=clock)
    slot = slots.open(_message(at=1000.0), CONFIG)
    clock.now = 1002.0

    # when it starts running and then finishes
    slots.start_running(slot, _run(), CONFIG)
    deadline, next_beat = slot.deadline, slot.next_beat
    finishing = slots.start_finishing(slot)

    # then each move happened, with the time limit from the claim and the beat from the receive
    assert finishing is True
    assert slot.state is SlotState.FINISHING
    assert (deadline, next_beat) == (1002.0 + 1800.0, 1000.0 + 150.0)


def test_exactly_one_of_finishing_and_abandoning_wins_the_race_to_leave_running() -> None:
    # given two running slots
    slots = Slots(2, clock=FakeClock())
    first, second = (slots.open(_message(), CONFIG) for _ in range(2))
    for slot in (first, second):
        slots.start_running(slot, _run(), CONFIG)

    # when one finishes before the supervisor abandons it, and the other the other way round
    finished_first = slots.start_finishing(first)
    abandoned_late = slots.abandon(first, "time limit exceeded")
    abandoned_first = slots.abandon(second, "time limit exceeded")
    finished_late = slots.start_finishing(second)

    # then the first move wins each time, and only the abandoned handler is told to stop
    assert (finished_first, abandoned_late, abandoned_first, finished_late) == (
        True,
        False,
        True,
        False,
    )
    assert (first.state, second.state) == (SlotState.FINISHING, SlotState.ABANDONED)
    assert (first.lost.is_set(), second.lost.is_set()) == (False, True)
    assert second.abandon_reason == "time limit exceeded"


def test_a_move_the_state_machine_does_not_have_raises() -> None:
    # given a slot still claiming its job
    slots = Slots(1, clock=FakeClock())
    slot = slots.open(_message(), CONFIG)

    # when the runner tries to finish it, or to start it twice
    # then both are refused as bugs
    with pytest.raises(SlotStateError, match="claiming to finishing"):
        slots.start_finishing(slot)
    slots.start_running(slot, _run(), CONFIG)
    with pytest.raises(SlotStateError, match="running to running"):
        slots.start_running(slot, _run(), CONFIG)


def test_slots_are_stuck_only_when_every_one_was_abandoned_longer_ago_than_the_limit() -> None:
    # given two running slots, one abandoned at t=1000
    clock = FakeClock(1000.0)
    slots = Slots(2, clock=clock)
    first, second = (slots.open(_message(), CONFIG) for _ in range(2))
    for slot in (first, second):
        slots.start_running(slot, _run(), CONFIG)
    slots.abandon(first, "time limit exceeded")

    # when time passes, and the second is abandoned at t=1061
    clock.now = 1061.0
    one_abandoned = slots.stuck(60)
    slots.abandon(second, "time limit exceeded")
    clock.now = 1100.0
    both_recent = slots.stuck(60)
    clock.now = 1122.0
    both_old = slots.stuck(60)

    # then only the last moment counts as stuck
    assert (one_abandoned, both_recent, both_old) == (False, False, True)


def test_due_splits_running_slots_into_timed_out_and_heartbeat_due() -> None:
    # given three running slots received at t=1000 and claimed at once
    clock = FakeClock(1000.0)
    slots = Slots(3, clock=clock)
    late, beat, calm = (slots.open(_message(at=1000.0), CONFIG) for _ in range(3))
    for slot in (late, beat, calm):
        slots.start_running(slot, _run(), CONFIG)
    late.deadline = 1100.0
    calm.next_beat = 1300.0

    # when the supervisor looks at t=1200
    due = slots.due(1200.0)

    # then the one past its limit times out, the one past its beat gets a heartbeat
    assert (due.timed_out, due.heartbeat) == ([late], [beat])


# --- heartbeat arithmetic ---------------------------------------------------------------------
def test_a_heartbeat_extends_by_the_visibility_until_the_cap_and_then_not_at_all() -> None:
    # given a queue with visibility 300 s, lease 240 s and a 1920 s visibility cap
    # when heartbeats come early, near the cap, and at the cap
    early = CONFIG.extension(150.0)
    near_cap = CONFIG.extension(1800.0)
    at_cap = CONFIG.extension(1870.0)

    # then the extension shrinks to the room left, the lease ending 60 s before the visibility
    assert early == Extension(visibility=300, lease=240)
    assert near_cap == Extension(visibility=120, lease=60)
    assert at_cap is None


# --- outcomes ---------------------------------------------------------------------------------
class UnitPayload(serializers.Serializer):
    label = serializers.CharField()


class Scripted:
    def __init__(self, action: Any) -> None:
        self.action = action

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        if isinstance(self.action, BaseException):
            raise self.action
        return self.action  # type: ignore[no-any-return]


def _registered(action: Any) -> Registered:
    spec = JobType(
        name="test.unit", kind=QueueKind.MESSAGING, payload=UnitPayload, roles=OPERATOR_ROLES
    )
    return Registered(spec=spec, handler=Scripted(action))


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ({"sent": 1}, Done({"sent": 1})),
        (PermanentError("Bad file."), Failed("Bad file.")),
        (PermanentError(), Failed("The job failed.")),
        ("not a dict", Failed("The job produced no result.")),
        ({"at": object()}, Failed("The job produced a result that cannot be stored.")),
        (LeaseLost("gone"), Lost()),
        (JobCancelled("asked to stop"), Cancelled()),
    ],
)
def test_each_way_a_handler_ends_is_one_kind_of_outcome(action: Any, expected: Any) -> None:
    # given a handler scripted to end one way
    throttle = ProgressThrottle(lambda *_: None, interval=1, clock=FakeClock(), auto_flush=False)

    # when the attempt runs
    outcome = attempt_run(
        run=_run(), registered=_registered(action), throttle=throttle, lost=threading.Event()
    )

    # then the outcome says so, typed
    assert outcome == expected


def test_an_unexpected_exception_is_errored_and_an_unknown_type_or_payload_fails() -> None:
    # given a handler that crashes, a job type without handler, and a payload gone invalid
    throttle = ProgressThrottle(lambda *_: None, interval=1, clock=FakeClock(), auto_flush=False)
    crash = ConnectionError("the provider hung up")

    # when each attempt runs
    crashed = attempt_run(
        run=_run(), registered=_registered(crash), throttle=throttle, lost=threading.Event()
    )
    unknown = attempt_run(run=_run(), registered=None, throttle=throttle, lost=threading.Event())
    invalid = attempt_run(
        run=replace(_run(), payload={}),
        registered=_registered({"sent": 1}),
        throttle=throttle,
        lost=threading.Event(),
    )

    # then the crash is retried, the other two fail for good
    assert crashed == Errored(crash)
    assert unknown == Failed("No messaging worker runs jobs of type test.unit.")
    assert invalid == Failed("The job's payload is not valid.")


# --- the poller -------------------------------------------------------------------------------
def test_a_poller_whose_every_slot_is_held_by_an_abandoned_handler_gives_up_without_receiving() -> (
    None
):
    # given one slot, abandoned 61 s ago by the fake clock
    clock = FakeClock(1000.0)
    slots = Slots(1, clock=clock)
    slot = slots.open(_message(), CONFIG)
    slots.start_running(slot, _run(), CONFIG)
    slots.abandon(slot, "time limit exceeded")
    clock.now = 1061.0
    queue = FakeQueue(['{"job_id": "x"}'])
    stopping = threading.Event()
    stuck: list[bool] = []

    def on_stuck() -> None:
        stuck.append(True)
        stopping.set()

    poller = Poller(
        queue=queue,
        slots=slots,
        stopping=stopping,
        start=lambda message: None,
        on_stuck=on_stuck,
        stats=WorkerStats(),
        visibility_timeout=300,
        wait_seconds=20,
        stuck_exit_after=60,
    )

    # when the poller runs
    poller.run()

    # then it reported the stuck slots and stopped, and nothing was received
    assert stuck == [True]
    assert queue.receives == 0


# --- the dead-letter sweep's bound --------------------------------------------------------------
def test_a_sweep_stops_at_its_message_bound_and_gives_back_what_it_kept() -> None:
    # given a dead-letter queue with 35 messages that name no job (no database is asked)
    dlq = FakeQueue(["not json"] * 35)
    sweep = DeadLetterSweep(dlq=dlq, kind=QueueKind.MESSAGING, max_messages=25)
    batches: list[int] = []

    # when one sweep runs
    report = sweep.sweep(between_batches=lambda: batches.append(dlq.receives))

    # then it read 25 in three receives, kept them all, made them visible again, and says so
    assert (report.received, report.kept, report.deleted, report.exhausted) == (25, 25, 0, True)
    assert batches == [1, 2, 3]
    assert len(dlq.released) == 25
    assert len(dlq.bodies) == 10


def test_a_sweep_stops_at_its_time_bound() -> None:
    # given a dead-letter queue that keeps answering, and a clock each receive moves by 25 s
    clock = FakeClock(1000.0)
    dlq = FakeQueue(["not json"] * 100, clock=clock)
    sweep = DeadLetterSweep(dlq=dlq, kind=QueueKind.MESSAGING, clock=clock, max_seconds=60)

    def tick() -> None:
        clock.now += 25

    # when one sweep runs
    report = sweep.sweep(between_batches=tick)

    # then it stopped after the receive that crossed 60 s
    assert (report.received, report.exhausted, dlq.receives) == (30, True, 3)


def test_a_sweep_of_an_empty_queue_reads_once_and_is_not_exhausted() -> None:
    # given an empty dead-letter queue
    dlq = FakeQueue([])

    # when one sweep runs
    report = DeadLetterSweep(dlq=dlq, kind=QueueKind.MESSAGING).sweep()

    # then one receive found nothing left
    assert (report.received, report.exhausted, dlq.receives) == (0, False, 1)
