"""The dead-letter sweep: settle the jobs whose message SQS moved to the dead-letter queue.

A message reaches the DLQ when it was received ``maxReceiveCount`` times without being
deleted. Mostly its job is already FAILED (the runner fails a job on its last receive and
lets the message go); but if the worker died on that last receive, the row is still
PROCESSING with an expired lease (or PENDING, when every claim failed), and nothing else will
ever receive the message. The sweep, run by the supervisor, reads the DLQ and for each
dead letter asks the database (``job_dead_letter_settle``):

| job | job row | dead letter |
| --- | --- | --- |
| PENDING, or PROCESSING with its lease over | FAILED now (published) | deleted |
| DONE or FAILED | unchanged | deleted |
| no such job in the tenant | — | deleted |
| PROCESSING with a live lease | unchanged | kept: visible again after the sweep |
| body names no job; database error | — | kept (a database error also ends the sweep) |

The record of a failure is the job row and an ERROR log line, so a dead letter of a terminal
job carries nothing more and is removed; what stays in the DLQ is what needs an operator.

Each sweep reads batch after batch until a receive returns nothing, bounded by
``max_messages`` (default 1,000, that is 100 receives) and ``max_seconds`` (default 60 s).
Kept messages are received with a visibility longer than a sweep can last, so one sweep reads
each message at most once and "nothing received" means nothing is left to read. Between
batches the sweep calls ``between_batches`` (the supervisor's heartbeats and time limits), so
a long sweep does not starve running jobs. A sweep stopped by its bound reports
``exhausted`` and the supervisor runs the next one at its next tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError

from domains.common import logcontext
from domains.jobs import services
from domains.jobs.dispatch import JobMessage, QueueKind
from domains.jobs.services import DeadLetterResult
from realtime.store import PublishRetry
from workers.slots import Clock
from workers.sqs import SQS_ERRORS, SQS_MAX_BATCH, MessageQueue, ReceivedMessage

logger = logging.getLogger(__name__)

SWEEP_MAX_MESSAGES = 1000
SWEEP_MAX_SECONDS = 60.0
# Long enough that a kept message stays hidden for the rest of the sweep.
SWEEP_VISIBILITY = 90
# A long poll: on AWS an empty short poll does not mean an empty queue (it samples servers).
SWEEP_WAIT_SECONDS = 1

DELETED = frozenset(
    {
        DeadLetterResult.FAILED,
        DeadLetterResult.CANCELLED,
        DeadLetterResult.FINISHED,
        DeadLetterResult.MISSING,
    }
)


@dataclass
class SweepReport:
    received: int = 0
    failed: int = 0  # jobs this sweep failed
    deleted: int = 0  # dead letters removed from the DLQ
    kept: int = 0  # dead letters left for a later sweep or an operator
    exhausted: bool = False  # stopped by its bound, not because the DLQ had nothing left
    depth: int | None = None  # visible in the DLQ after the sweep (the metric); None: unread


class DeadLetterSweep:
    def __init__(
        self,
        *,
        dlq: MessageQueue,
        kind: QueueKind,
        on_publish_failure: PublishRetry | None = None,
        clock: Clock = time.monotonic,
        max_messages: int = SWEEP_MAX_MESSAGES,
        max_seconds: float = SWEEP_MAX_SECONDS,
    ) -> None:
        self.dlq = dlq
        self.kind = kind
        self.on_publish_failure = on_publish_failure
        self.clock = clock
        self.max_messages = max_messages
        self.max_seconds = max_seconds

    def sweep(self, *, between_batches: Callable[[], None] = lambda: None) -> SweepReport:
        """Settle dead letters until the DLQ has nothing left to read or the bound is reached;
        ``between_batches`` runs after each settled batch."""
        report = SweepReport()
        kept: list[ReceivedMessage] = []
        deadline = self.clock() + self.max_seconds
        try:
            while True:
                if report.received >= self.max_messages or self.clock() >= deadline:
                    report.exhausted = True
                    break
                try:
                    batch = self.dlq.receive(
                        max_messages=min(SQS_MAX_BATCH, self.max_messages - report.received),
                        wait_seconds=SWEEP_WAIT_SECONDS,
                        visibility_timeout=SWEEP_VISIBILITY,
                    )
                except SQS_ERRORS as exc:
                    logger.warning("dead-letter queue not readable: %s", exc)
                    break
                if not batch:
                    break
                report.received += len(batch)
                done, left, database_down = self._settle_batch(batch, report)
                report.deleted += self.dlq.delete_many(done)
                kept += left
                if database_down:
                    break
                between_batches()
        finally:
            report.kept = len(kept)
            if kept:
                self.dlq.release_many(kept)
            report.depth = self.dlq.depth()
        if report.received:
            logger.info(
                "dead-letter sweep: received=%s failed=%s deleted=%s kept=%s%s",
                report.received,
                report.failed,
                report.deleted,
                report.kept,
                " (bound reached)" if report.exhausted else "",
            )
        return report

    def _settle_batch(
        self, batch: list[ReceivedMessage], report: SweepReport
    ) -> tuple[list[ReceivedMessage], list[ReceivedMessage], bool]:
        """(to delete, to keep, whether the database failed) for one received batch."""
        done: list[ReceivedMessage] = []
        left: list[ReceivedMessage] = []
        for index, received in enumerate(batch):
            try:
                message = JobMessage.decode(received.body)
            except ValueError:
                logger.warning(
                    "dead letter %s names no job; left for operators", received.message_id
                )
                left.append(received)
                continue
            with logcontext.job_scope(
                job_id=message.job_id, tenant_id=message.tenant_id, kind=self.kind
            ):
                try:
                    settled = services.job_dead_letter_settle(
                        message.tenant_id,
                        job_id=message.job_id,
                        on_publish_failure=self.on_publish_failure,
                    )
                except DatabaseError:
                    logger.exception("dead-lettered job not updated; the sweep stops here")
                    left += batch[index:]
                    return done, left, True
                if settled is DeadLetterResult.FAILED:
                    report.failed += 1
                    logger.error("job failed: its message reached the dead-letter queue")
                elif settled is DeadLetterResult.MISSING:
                    logger.error("dead letter of a job this tenant does not have; deleted")
            if settled in DELETED:
                done.append(received)
            else:
                left.append(received)
        return done, left, False
