"""The SQS queues of the job kinds: names, timings, the job message, sending and creating.

Both sides use this module: the API sends one message per job (after its row commits), the
worker runner receives them. One queue per kind (``ai``, ``video``, ``messaging``), each with a
dead-letter queue by redrive policy. Timings and names come from ``settings.WORKER_QUEUES``;
the per-kind concurrency caps are fixed here, in code, because they protect the machines the
workers run on (GPU memory, ffmpeg processes, the mail provider's rate) rather than tune them.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from project.aws import sqs_client

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType

    QueueAttributes = dict[QueueAttributeNameType, str]
else:
    QueueAttributes = dict

logger = logging.getLogger(__name__)

# AWS limits (SQS API reference).
SQS_MAX_VISIBILITY = 43_200
SQS_MAX_BATCH = 10


class QueueKind(StrEnum):
    AI = "ai"
    VIDEO = "video"
    MESSAGING = "messaging"


# Hard caps on concurrent jobs per worker process (ARCHITECTURE.md "Job lifecycle").
HARD_CONCURRENCY = {QueueKind.AI: 5, QueueKind.VIDEO: 3, QueueKind.MESSAGING: 5}


@dataclass(frozen=True, slots=True)
class QueueConfig:
    kind: QueueKind
    name: str
    dlq_name: str
    url: str  # configured URL; empty means "look the name up"
    visibility_timeout: int
    lease_seconds: int
    heartbeat_interval: float
    max_runtime: float
    max_visibility: int
    max_concurrency: int

    @property
    def lease_margin(self) -> int:
        """How long before a message reappears its database lease has already ended."""
        return self.visibility_timeout - self.lease_seconds

    def problems(self) -> list[str]:
        """Timing combinations that would let a message reappear while its job still runs."""
        found = []
        if not 0 < self.lease_seconds < self.visibility_timeout:
            found.append("lease_seconds must be positive and below visibility_timeout")
        if not 0 < self.visibility_timeout <= self.max_visibility <= SQS_MAX_VISIBILITY:
            found.append(f"need 0 < visibility_timeout <= max_visibility <= {SQS_MAX_VISIBILITY}")
        if not 0 < self.heartbeat_interval < self.lease_seconds:
            found.append("heartbeat_interval must be positive and below lease_seconds")
        if self.max_runtime + self.lease_margin > self.max_visibility:
            found.append(
                "max_runtime + (visibility_timeout - lease_seconds) must not exceed max_visibility"
            )
        return found


def queue_config(kind: QueueKind | str) -> QueueConfig:
    kind = QueueKind(kind)
    raw: dict[str, Any] = settings.WORKER_QUEUES[kind.value]
    return QueueConfig(
        kind=kind,
        name=str(raw["name"]),
        dlq_name=str(raw["dlq_name"]),
        url=str(raw.get("url") or ""),
        visibility_timeout=int(raw["visibility_timeout"]),
        lease_seconds=int(raw["lease_seconds"]),
        heartbeat_interval=float(raw["heartbeat_interval"]),
        max_runtime=float(raw["max_runtime"]),
        max_visibility=int(raw["max_visibility"]),
        max_concurrency=HARD_CONCURRENCY[kind],
    )


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


def queue_url(kind: QueueKind | str) -> str:
    config = queue_config(kind)
    return config.url or _url_for_name(config.name, settings.AWS_ENDPOINT_URL)


def dlq_url(kind: QueueKind | str) -> str | None:
    """The dead-letter queue the kind's queue redrives to, read from its RedrivePolicy."""
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=queue_url(kind), AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    policy = attributes.get("RedrivePolicy")
    if not policy:
        return None
    arn = json.loads(policy)["deadLetterTargetArn"]
    return _url_for_name(arn.rsplit(":", 1)[-1], settings.AWS_ENDPOINT_URL)


def max_receive_count(kind: QueueKind | str) -> int:
    """The queue's redrive maxReceiveCount as configured on the queue (the setting otherwise)."""
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=queue_url(kind), AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    policy = attributes.get("RedrivePolicy")
    if policy:
        return int(json.loads(policy)["maxReceiveCount"])
    return int(settings.SQS_MAX_RECEIVE_COUNT)


def queue_urls_forget() -> None:
    """Drop cached queue URLs (tests that recreate queues under other names)."""
    _url_for_name.cache_clear()


# --- sending --------------------------------------------------------------------------------
def job_message_send(kind: QueueKind | str, message: JobMessage) -> str:
    """Send one job message; returns the SQS message id. Raises botocore errors."""
    response = sqs_client().send_message(QueueUrl=queue_url(kind), MessageBody=message.encode())
    return response["MessageId"]


# --- creating (dev, tests, and a first deployment to a real account) -------------------------
@dataclass(frozen=True, slots=True)
class QueueEnsured:
    name: str
    url: str
    created: bool


def _queue_ensure(name: str, attributes: QueueAttributes) -> QueueEnsured:
    """Create the queue, or bring an existing one to these attributes. Idempotent."""
    client = sqs_client()
    try:
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
        }:
            raise
    else:
        client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return QueueEnsured(name=name, url=url, created=False)
    url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return QueueEnsured(name=name, url=url, created=True)


def queues_create(
    *, kinds: list[QueueKind] | None = None, max_receive_count: int | None = None
) -> list[QueueEnsured]:
    """Create (or update) each kind's queue and its dead-letter queue with the redrive policy.

    Kinds with a configured URL are managed elsewhere and left alone.
    """
    receive_count = max_receive_count or int(settings.SQS_MAX_RECEIVE_COUNT)
    if receive_count < 1:
        raise ImproperlyConfigured("SQS_MAX_RECEIVE_COUNT must be at least 1")
    ensured = []
    for kind in kinds or list(QueueKind):
        config = queue_config(kind)
        if config.url:
            logger.info("queue %s has a configured URL; not creating it", kind)
            continue
        dlq = _queue_ensure(
            config.dlq_name, {"MessageRetentionPeriod": str(settings.SQS_DLQ_RETENTION_SECONDS)}
        )
        arn = sqs_client().get_queue_attributes(QueueUrl=dlq.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        main = _queue_ensure(
            config.name,
            {
                "VisibilityTimeout": str(config.visibility_timeout),
                "ReceiveMessageWaitTimeSeconds": str(settings.SQS_WAIT_TIME_SECONDS),
                "MessageRetentionPeriod": str(settings.SQS_RETENTION_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": str(receive_count)}
                ),
            },
        )
        ensured += [dlq, main]
    queue_urls_forget()
    return ensured
