"""The process-wide resync sweep (realtime.watchdog.Sweeper) against real Redis.

The connections here are small stand-ins exposing what the sweep asks of a consumer; the
store, its pipelined reads and Redis are the real ones. The consumer's side of the contract
(``watched``/``repair``) is covered end to end in test_websocket.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import pytest

from realtime import store, watchdog
from realtime.keys import Topic
from realtime.state import Change, Position, Progress
from tests.integration.realtime.conftest import ALPHA, BETA
from tests.integration.realtime.test_websocket import make_token, subscribe, ws


class Connection:
    def __init__(
        self, tenant_id: int, sent: dict[Topic, Position], *, stalled: bool = False
    ) -> None:
        self.tenant_id = tenant_id
        self.sent = sent
        self.is_stalled = stalled
        self.repaired: list[Topic] = []
        self.closed = False

    def watched(self) -> Iterator[tuple[Topic, Position]]:
        yield from self.sent.items()

    def stalled(self, now: float) -> bool:
        return self.is_stalled

    def close_stalled(self) -> None:
        self.closed = True

    async def repair(self, topic: Topic) -> bool:
        self.repaired.append(topic)
        return True


async def _topic_at(tenant_id: int, seq: int) -> tuple[Topic, int]:
    """A running topic at ``seq``, and its epoch."""
    topic = Topic.job(uuid.uuid4())
    first = await store.apublish(
        tenant_id, topic, Change(status="PROCESSING", owner_id=7, attempt=1)
    )
    for percent in range(1, seq):  # seq 1 is the first status, each progress adds one
        await store.apublish(tenant_id, topic, Change(progress=Progress(percent=percent)))
    return topic, first.epoch


@pytest.mark.django_db(transaction=True)  # ALPHA's view of BETA's job: no record to rebuild
async def test_one_sweep_repairs_only_the_topics_that_moved_in_every_tenant() -> None:
    (moved_alpha, ea), (current_alpha, ec) = await _topic_at(ALPHA, 3), await _topic_at(ALPHA, 2)
    moved_beta, eb = await _topic_at(BETA, 4)
    # The same job id under another tenant is another topic: BETA's seq must not leak in.
    alpha_view_of_beta = Topic.parse(str(moved_beta))
    alpha = Connection(
        ALPHA, {moved_alpha: (ea, 2), current_alpha: (ec, 2), alpha_view_of_beta: (eb, 0)}
    )
    beta = Connection(BETA, {moved_beta: (eb, 1)})
    sweeper = watchdog.Sweeper()
    sweeper.connections.update([alpha, beta])

    repaired = await sweeper.sweep()

    assert repaired == 2
    assert alpha.repaired == [moved_alpha]  # not the current one, not BETA's job id
    assert beta.repaired == [moved_beta]


async def test_a_sweep_closes_connections_whose_client_stopped_reading() -> None:
    topic, epoch = await _topic_at(ALPHA, 3)
    stuck = Connection(ALPHA, {topic: (epoch, 0)}, stalled=True)
    healthy = Connection(ALPHA, {topic: (epoch, 0)})
    sweeper = watchdog.Sweeper()
    sweeper.connections.update([stuck, healthy])

    await sweeper.sweep()

    assert stuck.closed
    assert stuck.repaired == []  # a connection being closed is not written to
    assert (healthy.closed, healthy.repaired) == (False, [topic])


async def test_a_sweep_reads_thousands_of_topics_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic, epoch = await _topic_at(ALPHA, 2)
    connections = [
        Connection(ALPHA, {topic: (epoch, 1)}) for _ in range(watchdog.SWEEP_BATCH * 2 + 1)
    ]
    sweeper = watchdog.Sweeper()
    sweeper.connections.update(connections)
    calls: list[int] = []
    real = store.apositions_many

    async def counting(pairs: list[tuple[int, Topic]]) -> list[Position | None]:
        calls.append(len(pairs))
        return await real(pairs)

    monkeypatch.setattr(store, "apositions_many", counting)

    assert await sweeper.sweep() == len(connections)
    assert calls == [watchdog.SWEEP_BATCH, watchdog.SWEEP_BATCH, 1]


async def test_an_idle_connection_keeps_no_timer_task_or_loop_of_its_own() -> None:
    """Per idle connection one task, the one running the application: no sender waiting, no
    layer receive task, no timer loop (the token timers are handles, the resync is the sweep)."""
    topic, _epoch = await _topic_at(ALPHA, 2)

    async def tasks_with(count: int) -> int:
        async with contextlib.AsyncExitStack() as stack:
            for index in range(count):  # one user each: under the per-user connection cap
                token = make_token(user_id=1000 + index)
                await subscribe(await stack.enter_async_context(ws(token)), topic)
            await asyncio.sleep(0.1)
            return len(asyncio.all_tasks())

    one, eleven = await tasks_with(1), await tasks_with(11)
    per_connection = (eleven - one) / 10
    assert per_connection == 1, per_connection
