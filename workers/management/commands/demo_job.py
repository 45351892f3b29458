"""``python manage.py demo_job --tenant alpha --user alpha-staff [--recipients 120] [--watch]``

Creates a ``messaging.send`` job through the same service as ``POST /api/v1/jobs/`` and prints
its topic and URLs; ``--watch`` then follows it over the WebSocket like a browser would.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from domains.jobs import services
from realtime.auth import caller_from_access_token
from realtime.keys import Topic
from workers.management.commands.watch_job import (
    DEFAULT_ORIGIN,
    DEFAULT_URL,
    access_token,
    add_login_arguments,
)
from workers.watch import watch_topic


class Command(BaseCommand):
    help = "Create a demo messaging job and print its topic (optionally watch it live)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_login_arguments(parser)
        parser.add_argument("--recipients", type=int, default=120)
        parser.add_argument("--watch", action="store_true", help="follow it over the WebSocket")
        parser.add_argument("--url", default=DEFAULT_URL)
        parser.add_argument("--origin", default=DEFAULT_ORIGIN)

    def handle(self, *args: Any, **options: Any) -> None:
        token = access_token(options)
        caller = caller_from_access_token(token)
        recipients = [f"student{n:04d}@example.com" for n in range(options["recipients"])]
        recipients.append("not-an-address")  # reported in the result, the rest still go out
        job = services.job_create(
            caller.tenant_id,
            caller=caller,
            job_type="messaging.send",
            payload={
                "subject": "Class schedule update",
                "body": "Tomorrow's lecture starts at 10:00.",
                "recipients": recipients,
            },
        )
        topic = Topic.job(job.job_id)
        self.stdout.write(f"job        {job.job_id}")
        self.stdout.write(f"topic      {topic}")
        self.stdout.write(f"progress   {reverse('job-progress', kwargs={'job_id': job.job_id})}")
        self.stdout.write(f"detail     {reverse('job-detail', kwargs={'job_id': job.job_id})}")
        self.stdout.write(
            f"watch      python manage.py watch_job {job.job_id} "
            f"--tenant {options['tenant']} --user {options['user']}"
        )
        if options["watch"]:
            watch_topic(
                url=options["url"],
                token=token,
                topic=str(topic),
                origin=options["origin"],
                out=self.stdout.write,
            )
