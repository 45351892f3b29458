"""While the database does not answer, a worker receives no messages (workers/dbgate.py), so a
PostgreSQL restart does not use up the queued jobs' receives and dead-letter them. The real
restart, with real processes, is tests/faults/test_postgres_restart.py.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from workers.dbgate import DatabaseGate
from workers.poller import Poller
from workers.slots import Slots
from workers.sqs import ReceivedMessage
from workers.stats import WorkerStats


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingQueue:
    """Counts receives; the first one stops the poller."""

    url = "fake://queue"

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self.receives = 0

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int
    ) -> list[ReceivedMessage]:
        self.receives += 1
        self.stopping.set()
        return []

    def delete(self, message: ReceivedMessage) -> bool:
        return True

    def delete_many(self, messages: Sequence[ReceivedMessage]) -> int:
        return len(messages)

    def extend(self, message: ReceivedMessage, seconds: int) -> None:
        return None

    def release(self, message: ReceivedMessage, delay: int = 0) -> bool:
        return True

    def release_many(self, messages: Sequence[ReceivedMessage]) -> int:
        return len(messages)


def test_a_closed_gate_is_checked_with_doubling_waits_and_opens_when_the_database_answers() -> None:
    # given an open gate
    clock = Clock()
    gate = DatabaseGate(clock=clock, first_check=1, max_check=4)
    assert gate.is_open

    # when a claim fails, and then again while it is closed
    gate.failed()
    gate.failed()

    # then it is closed once; a check is due after 1 s, then 2, 4, 4 s while the database
    # does not answer
    assert (gate.is_open, gate.closures) == (False, 1)
    due_after = []
    for _ in range(4):
        start = clock.now
        while not gate.check_due(clock.now):
            clock.now += 0.5
        due_after.append(clock.now - start)
        gate.checked(answered=False, now=clock.now)
    assert due_after == [1.0, 2.0, 4.0, 4.0]

    # and a check that finds the database answering opens it
    gate.checked(answered=True, now=clock.now)
    assert gate.is_open
    assert not gate.check_due(clock.now + 100)


def test_the_poller_receives_nothing_while_the_gate_is_closed() -> None:
    # given a poller with a free slot whose gate is closed (a claim met a database error)
    stopping = threading.Event()
    queue = CountingQueue(stopping)
    gate = DatabaseGate(clock=Clock())
    gate.failed()
    poller = Poller(
        queue=queue,
        slots=Slots(1),
        stopping=stopping,
        start=lambda message: None,
        on_stuck=stopping.set,
        stats=WorkerStats(),
        visibility_timeout=30,
        wait_seconds=1,
        stuck_exit_after=60,
        gate=gate,
    )
    thread = threading.Thread(target=poller.run, daemon=True)

    # when it runs for a while, then the database answers a check
    thread.start()
    thread.join(timeout=0.3)
    received_while_closed = queue.receives
    gate.checked(answered=True, now=101.0)
    thread.join(timeout=5)

    # then nothing was received while closed, and the first receive came once it opened
    assert received_while_closed == 0
    assert queue.receives == 1
    assert not thread.is_alive()
