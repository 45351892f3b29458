"""``python manage.py create_queues``: queues, DLQs and the buckets, idempotently.

For development (moto's server), tests, and a first deployment to a real AWS account. Existing
queues are brought to the configured attributes (visibility timeout, long polling, retention,
redrive policy); queues configured by URL (``SQS_QUEUE_URL_<KIND>``) are left alone.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from domains.jobs.dispatch import QueueKind
from domains.jobs.uploads import imports_bucket_ensure
from domains.videos.storage import bucket_ensure as video_bucket_ensure
from workers.sqs import queues_create


class Command(BaseCommand):
    help = "Create or update the SQS queues and dead-letter queues of every job kind."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-receive-count",
            type=int,
            default=None,
            help="receives before a message moves to the DLQ (default SQS_MAX_RECEIVE_COUNT)",
        )
        parser.add_argument(
            "--queue", action="append", choices=[kind.value for kind in QueueKind], default=None
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kinds = [QueueKind(k) for k in options["queue"]] if options["queue"] else None
        for queue in queues_create(kinds=kinds, max_receive_count=options["max_receive_count"]):
            verb = "created" if queue.created else "up to date"
            self.stdout.write(f"{verb:<10} {queue.name:<28} {queue.url}")
        bucket = settings.EXCEL_IMPORT_BUCKET
        verb = "created" if imports_bucket_ensure() else "up to date"
        self.stdout.write(f"{verb:<10} {bucket:<28} s3://{bucket} (Excel uploads)")
        bucket = settings.VIDEO_BUCKET
        verb = "created" if video_bucket_ensure() else "up to date"
        self.stdout.write(f"{verb:<10} {bucket:<28} s3://{bucket} (videos)")
