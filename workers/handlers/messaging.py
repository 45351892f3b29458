"""``messaging.send``: one email per recipient, in batches, progress after each batch.

A cancel request (or a lost lease) is checked before each batch: the batches sent stay sent,
the next one is not.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from domains.messaging.providers import DjangoEmailProvider, EmailProvider
from domains.messaging.services import BatchDone, messaging_send
from workers.base import JobProgress, JobRun


class MessagingSendHandler:
    def __init__(self, provider: EmailProvider | None = None) -> None:
        self._provider = provider

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        payload = job.payload
        with translation.override(settings.LANGUAGE_CODE):
            step_name = gettext("Sending emails")

        def on_batch(done: BatchDone) -> None:
            progress.update(
                percent=round(100 * done.processed / done.total, 1),
                step="sending",
                step_index=done.index,
                step_total=done.batches,
                step_name_display=step_name,
                remaining_seconds=math.ceil(done.remaining),
            )

        return messaging_send(
            job.tenant_id,
            subject=payload["subject"],
            body=payload["body"],
            recipients=payload["recipients"],
            provider=self._provider or DjangoEmailProvider(),
            batch_size=settings.MESSAGING_BATCH_SIZE,
            send_interval=settings.MESSAGING_SEND_INTERVAL,
            on_batch=on_batch,
            before_batch=progress.check,
        )
