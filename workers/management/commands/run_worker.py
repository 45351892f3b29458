"""``python manage.py run_worker --queue ai|video|messaging [--concurrency N]``

One worker process for one queue kind. SIGTERM or SIGINT: stop polling, release unstarted
messages, give running jobs ``WORKER_SHUTDOWN_GRACE`` seconds, release the rest, exit 0. A
second signal skips what is left of the grace period. Started while SQS cannot be reached, it
retries its queue lookup with backoff (logged) until SQS answers or a signal ends the wait.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.jobs.dispatch import QueueKind
from workers.runner import Worker, build_when_queue_answers


class Command(BaseCommand):
    help = "Run one SQS worker process for a queue kind (ai, video or messaging)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", required=True, choices=[kind.value for kind in QueueKind])
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="job slots (default and maximum: the kind's cap: ai 5, video 3, messaging 5)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kind, concurrency = options["queue"], options["concurrency"]
        stopped = threading.Event()
        started: list[Worker] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # Flags only: the poller and the shutdown sequence do the logging and the work.
            stopped.set()
            for worker in started:
                worker.stop(immediately=worker.stopping)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            worker = build_when_queue_answers(
                lambda: Worker(kind, concurrency=concurrency), kind=kind, stopped=stopped
            )
        except ValueError as exc:  # a bad concurrency: no retry
            raise CommandError(str(exc)) from exc
        if worker is None:
            return
        started.append(worker)
        if stopped.is_set():
            worker.stop()
        code = worker.run()
        if code:
            sys.exit(code)
