"""A worker's job slots and the one place their state changes.

Every received message gets a :class:`Slot`. Its state moves along one path::

    CLAIMING ──> RUNNING ──> FINISHING      (the job thread settles the outcome)
                    └──────> ABANDONED      (lease lost, time limit, released at shutdown)

FINISHING and ABANDONED are final, and exactly one of them wins: the job thread and the
supervisor (or the shutdown) may race to leave RUNNING, and the loser learns so from a
``False``. Any other move is a bug and raises :class:`SlotStateError`. The slot is freed
(removed from :class:`Slots`) when its job thread returns, whatever the state: an abandoned
handler keeps its slot until it returns, because threads cannot be killed.

All transitions and reads of the set happen under one condition variable, which the poller
also waits on for a free slot.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domains.common import logcontext
from workers.base import JobRun
from workers.config import QueueConfig
from workers.sqs import ReceivedMessage

# Seconds of the local monotonic clock; injectable so tests can move time without sleeping.
Clock = Callable[[], float]


class SlotState(StrEnum):
    CLAIMING = "claiming"
    RUNNING = "running"
    FINISHING = "finishing"
    # Lease lost, time limit passed, or released at shutdown: the handler may still be
    # running, but nothing it does can change the job any more.
    ABANDONED = "abandoned"


TRANSITIONS: Mapping[SlotState, frozenset[SlotState]] = {
    SlotState.CLAIMING: frozenset({SlotState.RUNNING}),
    SlotState.RUNNING: frozenset({SlotState.FINISHING, SlotState.ABANDONED}),
    SlotState.FINISHING: frozenset(),
    SlotState.ABANDONED: frozenset(),
}
FINAL = frozenset({SlotState.FINISHING, SlotState.ABANDONED})


class SlotStateError(RuntimeError):
    """A transition the slot state machine does not have (a bug in the runner)."""


class SlotsStuck(Exception):
    """Every slot is held by an abandoned handler: only a new process frees them."""


@dataclass(eq=False)
class Slot:
    message: ReceivedMessage
    state: SlotState = SlotState.CLAIMING
    job: JobRun | None = None
    started: float = 0.0
    deadline: float = math.inf
    next_beat: float = math.inf
    visible_until: float = 0.0
    lease_until: float = 0.0
    abandoned_at: float = 0.0
    abandon_reason: str = ""
    heartbeats: int = 0
    lost: threading.Event = field(default_factory=threading.Event)
    # Set by the supervisor when it sees the job's cancel request; the handler then stops and
    # the job thread settles the job CANCELLED (a RUNNING slot, not an abandoned one).
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def run(self) -> JobRun:
        """The claimed job; only RUNNING, FINISHING and ABANDONED slots have one."""
        if self.job is None:
            raise SlotStateError("slot has no claimed job")
        return self.job

    def log_scope(self) -> AbstractContextManager[Any]:
        """The job's log context, for lines the supervisor or the shutdown writes about it."""
        run = self.job
        if run is None:
            return nullcontext()
        return logcontext.job_scope(
            job_id=run.job_id,
            tenant_id=run.tenant_id,
            kind=run.kind,
            attempt=run.attempt,
            started=self.message.received_at,
        )

    def _move(self, to: SlotState) -> bool:
        """Change state; False if the slot already reached a final state (a lost race)."""
        if to in TRANSITIONS[self.state]:
            self.state = to
            return True
        if self.state in FINAL and to in FINAL:
            return False
        raise SlotStateError(f"a slot cannot go from {self.state} to {to}")


@dataclass(frozen=True, slots=True)
class Due:
    """What the supervisor owes the running slots at one instant."""

    timed_out: list[Slot]
    heartbeat: list[Slot]


class Slots:
    """The slots of one worker, capped at ``capacity``, guarded by one condition."""

    def __init__(self, capacity: int, *, clock: Clock = time.monotonic) -> None:
        self.capacity = capacity
        self.clock = clock
        self.peak = 0
        self._cond = threading.Condition()
        self._slots: set[Slot] = set()

    def __len__(self) -> int:
        with self._cond:
            return len(self._slots)

    # --- membership -----------------------------------------------------------------------------
    def open(self, message: ReceivedMessage, config: QueueConfig) -> Slot:
        """A CLAIMING slot for a received message; its visibility and lease count from the
        receive."""
        slot = Slot(
            message=message,
            visible_until=message.received_at + config.visibility_timeout,
            lease_until=message.received_at + config.lease_seconds,
        )
        with self._cond:
            self._slots.add(slot)
            self.peak = max(self.peak, len(self._slots))
        return slot

    def free(self, slot: Slot) -> None:
        """The slot's job thread has returned: the slot is free for the next message."""
        with self._cond:
            self._slots.discard(slot)
            self._cond.notify_all()

    def wait_for_free(self, *, stopping: threading.Event, stuck_after: float) -> int:
        """Wait until a slot is free and return how many are; 0 once ``stopping`` is set.

        Raises :class:`SlotsStuck` when every slot has been held by an abandoned handler for
        more than ``stuck_after`` seconds.
        """
        with self._cond:
            while not stopping.is_set():
                free = self.capacity - len(self._slots)
                if free > 0:
                    return free
                if self.stuck(stuck_after):
                    raise SlotsStuck(f"every slot abandoned for over {stuck_after:.0f} s")
                self._cond.wait(0.5)
        return 0

    def stuck(self, after: float) -> bool:
        """True when every slot is held by a handler abandoned more than ``after`` s ago."""
        now = self.clock()
        with self._cond:
            return bool(self._slots) and all(
                slot.state is SlotState.ABANDONED and now - slot.abandoned_at > after
                for slot in self._slots
            )

    def running(self) -> list[Slot]:
        with self._cond:
            return [slot for slot in self._slots if slot.state is SlotState.RUNNING]

    def due(self, now: float) -> Due:
        """The running slots past their time limit, and those whose heartbeat is due."""
        timed_out, heartbeat = [], []
        for slot in self.running():
            if now >= slot.deadline:
                timed_out.append(slot)
            elif now >= slot.next_beat:
                heartbeat.append(slot)
        return Due(timed_out=timed_out, heartbeat=heartbeat)

    def wait_until_settled(self, deadline: float) -> list[Slot]:
        """Wait until no slot is CLAIMING, RUNNING or FINISHING, or until ``deadline``; return
        the slots still RUNNING then (shutdown releases them)."""
        with self._cond:
            while any(slot.state is not SlotState.ABANDONED for slot in self._slots):
                remaining = deadline - self.clock()
                if remaining <= 0:
                    break
                self._cond.wait(min(0.2, remaining))
            return [slot for slot in self._slots if slot.state is SlotState.RUNNING]

    # --- transitions ----------------------------------------------------------------------------
    def start_running(self, slot: Slot, run: JobRun, config: QueueConfig) -> None:
        """CLAIMING -> RUNNING: the claim succeeded; the time limit counts from now."""
        now = self.clock()
        with self._cond:
            slot._move(SlotState.RUNNING)
            slot.job = run
            slot.started = now
            slot.deadline = now + config.max_runtime
            slot.next_beat = slot.message.received_at + config.heartbeat_interval

    def start_finishing(self, slot: Slot) -> bool:
        """RUNNING -> FINISHING: the job thread may record its outcome. False if abandoned."""
        with self._cond:
            return slot._move(SlotState.FINISHING)

    def give_up(self, slot: Slot) -> bool:
        """Any state -> ABANDONED after an unexpected error in the job thread, outside the
        table: the thread can no longer settle the outcome, so the lease and the message must
        be given back. False if the slot was already abandoned (lost or timed out: someone
        else owns the job and the message now)."""
        with self._cond:
            if slot.state is SlotState.ABANDONED:
                return False
            slot.state = SlotState.ABANDONED
            slot.abandon_reason = "error"
            slot.abandoned_at = self.clock()
            slot.lost.set()
            return True

    def abandon(self, slot: Slot, reason: str) -> bool:
        """RUNNING -> ABANDONED: the handler is told, and its outcome will be discarded. False
        if the slot already finished or was abandoned."""
        with self._cond:
            if not slot._move(SlotState.ABANDONED):
                return False
            slot.abandon_reason = reason
            slot.abandoned_at = self.clock()
            slot.lost.set()
            return True
