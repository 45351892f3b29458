"""Sending a job to its queue: the queue kinds, the job message, the queue URL and the send.

The API's half of SQS: one message per job, sent after its row commits. One queue per kind
(``ai``, ``video``, ``messaging``), each with a dead-letter queue by redrive policy; names and
URLs come from ``settings.WORKER_QUEUES``. The worker's half (timings, caps, receiving,
creating queues) is ``workers.config`` and ``workers.sqs``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from django.conf import settings

from domains.common.aws import sqs_client


class QueueKind(StrEnum):
    AI = "ai"
    VIDEO = "video"
    MESSAGING = "messaging"


# --- the job message ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JobMessage:
    """The body of a job's SQS message. The row in the database is the job; this points at it."""

    job_id: uuid.UUID
    tenant_id: int
    request_id: str = ""  # the creating request's id, so worker logs can be joined to it

    def encode(self) -> str:
        body: dict[str, Any] = {"job_id": str(self.job_id), "tenant_id": self.tenant_id}
        if self.request_id:
            body["request_id"] = self.request_id
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> JobMessage:
        try:
            body = json.loads(text)
            return cls(
                job_id=uuid.UUID(str(body["job_id"])),
                tenant_id=int(body["tenant_id"]),
                request_id=str(body.get("request_id") or "")[:128],
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a job message: {text[:200]!r}") from exc


# --- URLs -----------------------------------------------------------------------------------
@cache
def _url_for_name(name: str, endpoint: str) -> str:
    return sqs_client().get_queue_url(QueueName=name)["QueueUrl"]


def queue_url_by_name(name: str) -> str:
    """The URL of the queue called ``name`` at the configured endpoint, looked up once."""
    return _url_for_name(name, settings.AWS_ENDPOINT_URL)


def queue_url(kind: QueueKind | str) -> str:
    raw: dict[str, Any] = settings.WORKER_QUEUES[QueueKind(kind).value]
    return str(raw.get("url") or "") or queue_url_by_name(str(raw["name"]))


def queue_urls_forget() -> None:
    """Drop cached queue URLs (tests that recreate queues under other names)."""
    _url_for_name.cache_clear()


# --- sending --------------------------------------------------------------------------------
def job_message_send(kind: QueueKind | str, message: JobMessage) -> str:
    """Send one job message; returns the SQS message id. Raises botocore errors."""
    response = sqs_client().send_message(QueueUrl=queue_url(kind), MessageBody=message.encode())
    return response["MessageId"]
