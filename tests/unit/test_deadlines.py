"""realtime.deadlines: many callbacks under one loop timer (per-connection token deadlines)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from realtime import deadlines


async def test_deadlines_run_in_time_order_and_ties_in_scheduling_order() -> None:
    # given deadlines scheduled out of order, two of them at the same delay
    ran: list[str] = []
    deadlines.call_later(0.03, ran.append, "c")
    deadlines.call_later(0.01, ran.append, "a")
    deadlines.call_later(0.02, ran.append, "b1")
    deadlines.call_later(0.02, ran.append, "b2")
    deadlines.call_later(-5, ran.append, "now")  # past: as soon as possible

    # when their times pass
    await asyncio.sleep(0.1)

    # then each ran once, earliest first
    assert ran == ["now", "a", "b1", "b2", "c"]


async def test_a_cancelled_deadline_never_runs_and_lets_go_of_its_callback() -> None:
    # given a deadline whose callback holds an object, and one after it
    class Holder:
        def __init__(self) -> None:
            self.ran = False

        def run(self) -> None:
            self.ran = True

    holder = Holder()
    ref = weakref.ref(holder)
    first = deadlines.call_later(0.01, holder.run)
    later: list[int] = []
    deadlines.call_later(0.02, later.append, 1)

    # when it is cancelled and the holder is dropped
    first.cancel()
    del holder
    gc.collect()

    # then nothing keeps the holder alive, and the next deadline still runs
    assert ref() is None
    await asyncio.sleep(0.06)
    assert later == [1]


async def test_cancelled_deadlines_are_compacted_out_of_the_heap() -> None:
    # given many far deadlines, most of them cancelled (connections that went away)
    loop = asyncio.get_running_loop()
    scheduled = [deadlines.call_later(3600, lambda: None) for _ in range(200)]
    for deadline in scheduled[:150]:
        deadline.cancel()

    # then the heap holds only the live ones
    heap = deadlines._by_loop[loop].heap
    assert len(heap) <= 100
    assert sum(1 for d in heap if d.active) == 50
    for deadline in scheduled[150:]:
        deadline.cancel()


async def test_a_failing_callback_does_not_hold_back_the_others() -> None:
    # given a deadline whose callback raises, and one due at the same time
    ran: list[int] = []

    def broken() -> None:
        raise RuntimeError("boom")

    deadlines.call_later(0.01, broken)
    deadlines.call_later(0.01, ran.append, 2)

    # when their time passes
    await asyncio.sleep(0.05)

    # then the other ran
    assert ran == [2]
