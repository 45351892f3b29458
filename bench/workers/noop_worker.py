"""A worker process whose only job type does nothing: what the runner itself costs.

    python bench/workers/noop_worker.py --concurrency 5

Started by ``run.py``; the same ``Worker`` as ``manage.py run_worker --queue messaging``, with
one extra job type, ``bench.noop``, registered in this process only.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("ACADEMY_PROCESS", "worker")

import django

django.setup()

from rest_framework import serializers  # noqa: E402

from domains.jobs import types  # noqa: E402
from domains.jobs.dispatch import QueueKind  # noqa: E402
from domains.jobs.types import OPERATOR_ROLES, JobType  # noqa: E402
from workers.base import JobProgress, JobRun  # noqa: E402
from workers.handlers.messaging import MessagingSendHandler  # noqa: E402
from workers.runner import Worker  # noqa: E402

NOOP = "bench.noop"


class NoPayload(serializers.Serializer):
    pass


def register() -> None:
    types.JOB_TYPES[NOOP] = JobType(
        name=NOOP, kind=QueueKind.MESSAGING, payload=NoPayload, roles=OPERATOR_ROLES
    )


class Noop:
    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        return {}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=5)
    args = parser.parse_args()
    register()
    worker = Worker(
        QueueKind.MESSAGING,
        concurrency=args.concurrency,
        handlers={"messaging.send": MessagingSendHandler(), NOOP: Noop()},
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
