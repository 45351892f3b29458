"""``python manage.py watch_job <job_id> --tenant alpha --user alpha-staff``

Logs in as the user (demo password by default), opens /ws/v1/ and prints the job's states
until it ends.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.common.errors import AuthenticationFailed
from domains.tenants.services import auth_token_issue
from workers.watch import watch_topic

DEFAULT_URL = "ws://127.0.0.1:8000/ws/v1/"
DEFAULT_ORIGIN = "http://127.0.0.1:8000"


def add_login_arguments(parser: CommandParser) -> None:
    parser.add_argument("--tenant", default="alpha", help="tenant code (default alpha)")
    parser.add_argument("--user", default="alpha-staff", help="username (default alpha-staff)")
    parser.add_argument("--password", default="demo1234", help="password (demo default)")


def access_token(options: dict[str, Any]) -> str:
    try:
        return auth_token_issue(
            tenant_code=options["tenant"], username=options["user"], password=options["password"]
        ).access
    except AuthenticationFailed as exc:
        raise CommandError(
            f"cannot log in as {options['user']} in {options['tenant']} (run seed_demo?)"
        ) from exc


class Command(BaseCommand):
    help = "Print a job's live states from the WebSocket until it ends."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", type=uuid.UUID)
        add_login_arguments(parser)
        parser.add_argument("--url", default=DEFAULT_URL, help=f"WebSocket URL ({DEFAULT_URL})")
        parser.add_argument("--origin", default=DEFAULT_ORIGIN)
        parser.add_argument("--timeout", type=float, default=300.0)

    def handle(self, *args: Any, **options: Any) -> None:
        token = access_token(options)
        topic = f"job:{options['job_id']}"
        self.stdout.write(f"watching {topic} on {options['url']}")
        try:
            watch_topic(
                url=options["url"],
                token=token,
                topic=topic,
                origin=options["origin"],
                out=self.stdout.write,
                timeout=options["timeout"],
            )
        except OSError as exc:
            raise CommandError(f"cannot reach {options['url']}: {exc}") from exc
