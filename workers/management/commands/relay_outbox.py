"""``python manage.py relay_outbox [--once] [--interval S] [--batch N] [--grace S]``

The outbox relay (workers/relay.py, docs/adr/0011-the-job-row-is-the-outbox.md): sends the
queue messages of jobs whose send after the commit did not happen, and republishes terminal
states that did not reach Redis. Runs until SIGTERM or SIGINT (then finishes its pass and exits
0); ``--once`` makes one pass and prints what it did. Safe to run more than once at a time.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.relay import Relay


class Command(BaseCommand):
    help = "Send unsent job messages and republish unpublished terminal states (the outbox)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--interval", type=float, help="seconds between passes")
        parser.add_argument("--batch", type=int, help="rows per sweep and pass")
        parser.add_argument(
            "--grace", type=float, help="seconds a row is left to its own sender first"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            relay = Relay(
                interval=options["interval"], batch=options["batch"], grace=options["grace"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["once"]:
            tick = relay.tick()
            if tick.database_failed:
                raise CommandError("The database is unavailable; nothing was relayed.")
            self.stdout.write(
                f"sent {tick.sent} message(s), republished {tick.republished} terminal state(s)"
                + (f", restored {tick.restored} after a Redis rewind" if tick.restored else "")
                + ("; the queue did not answer" if tick.queue_failed else "")
            )
            return

        def on_signal(signum: int, frame: FrameType | None) -> None:
            relay.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        relay.run()
