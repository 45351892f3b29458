"""The outbox relay: sends the job messages and republishes the terminal states that did not go
out after their commit (docs/adr/0011-the-job-row-is-the-outbox.md).

One loop, two passes per tick: ``outbox.unsent_messages_relay`` (PENDING jobs whose message is
not recorded as sent) and ``outbox.unpublished_terminals_republish`` (finished jobs whose
terminal state is not recorded as published). Both work from the database, so nothing is lost
when this process, a worker or an API process restarts. Running two relays at once is safe:
rows are taken with ``SELECT … FOR UPDATE SKIP LOCKED``, and a duplicate is harmless anyway.

Before them, each tick asks Redis whether it went back in time (``store.rewind_check``: the
server answering is not the one that wrote the checkpoint, so its dataset came from a dump or
a replica). Then the terminal states recorded as published since the checkpoint may be
missing, and ``outbox.rewound_terminals_restore`` (jobs) and
``videos.services.rewound_videos_restore`` (videos ended since) put back those Redis shows
running; the
checkpoint is marked only once that pass finished, so a relay that dies meanwhile leaves the
rewind for the next one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django import db
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from domains.jobs import outbox
from domains.videos import services as video_services
from realtime import store
from realtime.store import RealtimeUnavailable
from workers import metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RelayTick:
    sent: int = 0
    republished: int = 0
    restored: int = 0  # terminal states put back after Redis went back in time
    queue_failed: bool = False
    database_failed: bool = False


class Relay:
    def __init__(
        self,
        *,
        interval: float | None = None,
        batch: int | None = None,
        grace: float | None = None,
    ) -> None:
        self.interval = settings.OUTBOX_RELAY_INTERVAL if interval is None else interval
        self.batch = settings.OUTBOX_RELAY_BATCH if batch is None else batch
        self.grace = settings.OUTBOX_RELAY_GRACE if grace is None else grace
        if self.interval <= 0 or self.batch <= 0 or self.grace < 0:
            raise ValueError("the relay needs interval > 0, batch > 0 and grace >= 0")
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> RelayTick:
        """One pass of both sweeps. A database outage is logged and waited out, not raised."""
        try:
            restored = self.rewind_repair()
            report = outbox.unsent_messages_relay(limit=self.batch, older_than=self.grace)
            republished = outbox.unpublished_terminals_republish(
                limit=self.batch, older_than=self.grace
            )
            metrics.outbox_backlog(outbox.outbox_backlog())
        except DatabaseError:
            logger.warning("relay: database unavailable; retrying", exc_info=True)
            db.connection.close()  # a broken connection is opened afresh next tick
            return RelayTick(database_failed=True)
        return RelayTick(
            sent=report.sent,
            republished=republished,
            restored=restored,
            queue_failed=bool(report.failed),
        )

    def rewind_repair(self) -> int:
        """If Redis went back in time, restore the terminal states it may have lost; returns
        how many. A Redis outage is logged and left to the next tick (the other passes meet it
        too). Database errors propagate to :meth:`tick`."""
        try:
            rewind = store.rewind_check()
            if rewind is None:
                return 0
            since = datetime.fromtimestamp(rewind.since_ms / 1000, tz=UTC) - timedelta(
                seconds=settings.OUTBOX_REWIND_MARGIN
            )
            if settings.REALTIME_TERMINAL_TTL > 0:  # older terminal states have expired anyway
                since = max(
                    since, timezone.now() - timedelta(seconds=settings.REALTIME_TERMINAL_TTL)
                )
            logger.warning(
                "relay: Redis went back in time (its dataset was written by another server, "
                "checkpoint %s); restoring terminal states published since %s",
                datetime.fromtimestamp(rewind.since_ms / 1000, tz=UTC).isoformat(),
                since.isoformat(),
            )
            restored = outbox.rewound_terminals_restore(since=since, batch=self.batch)
            restored += video_services.rewound_videos_restore(since=since, batch=self.batch)
            store.rewind_repaired()
        except RealtimeUnavailable as exc:
            logger.warning("relay: Redis unavailable for the rewind check; retrying: %s", exc)
            return 0
        logger.warning("relay: %s terminal state(s) restored after the Redis rewind", restored)
        return restored

    def run(self) -> int:
        """Tick every ``interval`` seconds until :meth:`stop`; a full batch ticks again at once."""
        logger.info(
            "relay started interval=%s s batch=%s grace=%s s", self.interval, self.batch, self.grace
        )
        while not self._stop.is_set():
            tick = self.tick()
            busy = not tick.queue_failed and self.batch in (tick.sent, tick.republished)
            if not busy:
                self._stop.wait(self.interval)
        db.connection.close()
        logger.info("relay stopped")
        return 0
