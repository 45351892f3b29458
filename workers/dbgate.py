"""While the database does not answer, the worker takes no messages.

Every receive of an SQS message counts toward its queue's ``maxReceiveCount``. A worker that
went on receiving while PostgreSQL was down (a restart, a failover) failed each claim, released
the message, received it again, and moved every queued job to the dead-letter queue within
seconds, where the sweep then fails it ("abandoned after repeated failed attempts"): in the
fault suite a 5 s restart dead-lettered all ten jobs. So a job thread whose claim or finish
meets a database error closes this gate, the poller receives nothing while it is closed, and
the supervisor checks the database when a check is due (1 s, then twice as long each time, up
to 30 s) and opens the gate once it answers. The poller itself never touches the database.
"""

from __future__ import annotations

import logging
import threading

from workers.slots import Clock

logger = logging.getLogger(__name__)

FIRST_CHECK = 1.0
MAX_CHECK = 30.0


class DatabaseGate:
    def __init__(
        self, *, clock: Clock, first_check: float = FIRST_CHECK, max_check: float = MAX_CHECK
    ) -> None:
        self.clock = clock
        self.first_check, self.max_check = first_check, max_check
        self._cond = threading.Condition()
        self._closed_at: float | None = None
        self._delay = first_check
        self._next_check = 0.0
        self.closures = 0

    @property
    def is_open(self) -> bool:
        with self._cond:
            return self._closed_at is None

    def failed(self) -> None:
        """A claim or a finish met a database error: stop receiving until a check passes."""
        with self._cond:
            if self._closed_at is not None:
                return
            now = self.clock()
            self._closed_at, self._delay = now, self.first_check
            self._next_check = now + self._delay
            self.closures += 1
        logger.warning(
            "database unavailable: no messages are received until it answers (first check in "
            "%.0f s), so queued jobs do not use up their receives",
            self.first_check,
        )

    def check_due(self, now: float) -> bool:
        with self._cond:
            return self._closed_at is not None and now >= self._next_check

    def checked(self, *, answered: bool, now: float) -> None:
        """The supervisor's check: open the gate, or wait twice as long for the next one."""
        with self._cond:
            if self._closed_at is None:
                return
            if not answered:
                self._delay = min(self._delay * 2, self.max_check)
                self._next_check = now + self._delay
                return
            closed_for, self._closed_at = now - self._closed_at, None
            self._cond.notify_all()
        logger.info("database answers again after %.1f s; receiving messages", closed_for)

    def wait_open(self, stopping: threading.Event, timeout: float = 0.5) -> bool:
        """For the poller: True at once when open, else wait up to ``timeout`` for it."""
        with self._cond:
            if self._closed_at is None:
                return True
            if not stopping.is_set():
                self._cond.wait(timeout)
            return self._closed_at is None
