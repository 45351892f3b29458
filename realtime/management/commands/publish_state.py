"""Apply one change to a topic through the workers' publish path and print the result.

    python manage.py publish_state --tenant 1 --topic job:<id> --status PROCESSING --percent 40

For operators (republish a topic's state, add progress to it) and scripted checks. It refuses
a state that contradicts the database record (another status or attempt than recorded, or a
job or video that does not exist in that tenant) unless ``--force`` is given (PROTOCOL.md §5a).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from realtime import rebuild, records, store
from realtime.keys import InvalidTopic, Topic
from realtime.state import Change, InvalidChange, Progress


class Command(BaseCommand):
    help = "Apply a state change to a topic (same path as workers) and print the state document."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", type=int, required=True, help="tenant id")
        parser.add_argument("--topic", required=True, help="job:<id> or video:<id>")
        parser.add_argument("--status", required=True)
        parser.add_argument("--percent", type=float)
        parser.add_argument("--step")
        parser.add_argument("--error")
        parser.add_argument("--attempt", type=int)
        parser.add_argument("--owner", type=int, help="owner user id (first write only)")
        parser.add_argument(
            "--force",
            action="store_true",
            help="publish even when the state contradicts the database record",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            topic = Topic.parse(options["topic"])
        except InvalidTopic as exc:
            raise CommandError(str(exc)) from exc
        progress = None
        if options["percent"] is not None or options["step"]:
            progress = Progress(percent=options["percent"], step=options["step"])
        change = Change(
            status=options["status"],
            progress=progress,
            error=options["error"],
            attempt=options["attempt"],
            owner_id=options["owner"],
        )
        try:
            change.validate(topic.kind)
        except InvalidChange as exc:
            raise CommandError(str(exc)) from exc
        if not options["force"]:
            self._check_record(options["tenant"], topic, change)
        try:
            result = store.publish(options["tenant"], topic, change)
        except InvalidChange as exc:
            raise CommandError(str(exc)) from exc
        except store.RealtimeUnavailable as exc:
            raise CommandError(f"Redis unavailable: {exc}") from exc
        if not result.accepted:
            self.stderr.write(f"change not applied: {result.reason}")
        self.stdout.write(json.dumps(result.document, ensure_ascii=False, indent=2))

    def _check_record(self, tenant_id: int, topic: Topic, change: Change) -> None:
        if rebuild.registered(topic.kind) is None:
            raise CommandError(
                f"no app answers for {topic.kind.value} records; nothing published "
                "(use --force to publish anyway)"
            )
        record = rebuild.record_state(tenant_id, topic)
        reason = records.contradiction(
            record,
            tenant_id=tenant_id,
            topic=topic,
            status=str(change.status),
            attempt=change.attempt,
        )
        if reason is not None:
            raise CommandError(
                f"Refused: {reason}. Nothing was published; the database is the record "
                "(use --force to publish anyway)."
            )
