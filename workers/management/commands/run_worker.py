"""``python manage.py run_worker --queue ai|video|messaging [--concurrency N]``

One worker process for one queue kind. SIGTERM or SIGINT: stop polling, release unstarted
messages, give running jobs ``WORKER_SHUTDOWN_GRACE`` seconds, release the rest, exit 0. A
second signal skips what is left of the grace period.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.jobs.dispatch import QueueKind
from workers.runner import Worker


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
        try:
            worker = Worker(options["queue"], concurrency=options["concurrency"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # Flags only: the poller and the shutdown sequence do the logging and the work.
            worker.stop(immediately=worker.stopping)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        code = worker.run()
        if code:
            sys.exit(code)
