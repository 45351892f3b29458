"""The worker's side of SQS: receive, delete, extend and release messages; create the queues.

:class:`QueueClient` is the runner's handle on one queue. Every call is one SQS request;
nothing is buffered. Errors are the caller's to judge: a failed heartbeat extension means the
lease is lost, a failed delete only means a duplicate delivery later (which the claim turns
into a no-op). :func:`queues_create` provisions each kind's queue and dead-letter queue (dev,
tests, and a first deployment to a real account). Sending is the API's: ``domains.jobs.dispatch``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from domains.common.aws import sqs_client
from domains.jobs.dispatch import QueueKind, queue_urls_forget
from workers.config import queue_config

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

    QueueAttributes = dict[QueueAttributeNameType, str]
else:
    QueueAttributes = dict

logger = logging.getLogger(__name__)

# AWS limit (SQS API reference).
SQS_MAX_BATCH = 10

SQS_ERRORS = (BotoCoreError, ClientError)
# Errors meaning "this receipt handle no longer controls the message".
LOST_HANDLE_CODES = frozenset(
    {
        "ReceiptHandleIsInvalid",
        "InvalidParameterValue",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
    }
)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    received_at: float = field(default_factory=time.monotonic)  # local monotonic clock


def is_lost_handle(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response["Error"]["Code"] in LOST_HANDLE_CODES


class MessageQueue(Protocol):
    """What the runner needs of one queue (:class:`QueueClient`; a fake in unit tests)."""

    url: str

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int
    ) -> list[ReceivedMessage]: ...

    def delete(self, message: ReceivedMessage) -> bool: ...

    def delete_many(self, messages: Sequence[ReceivedMessage]) -> int: ...

    def extend(self, message: ReceivedMessage, seconds: int) -> None: ...

    def release(self, message: ReceivedMessage, delay: int = 0) -> bool: ...

    def release_many(self, messages: Sequence[ReceivedMessage]) -> int: ...

    def depth(self) -> int | None:
        """Messages visible now (approximate, as SQS counts them); None if SQS did not answer."""
        ...


class QueueClient:
    def __init__(
        self,
        url: str,
        client: SQSClient | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client or sqs_client()
        self._clock = clock  # stamps ``received_at``: the same clock as the runner's

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int
    ) -> list[ReceivedMessage]:
        response = self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(max_messages, SQS_MAX_BATCH)),
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        now = self._clock()
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                received_at=now,
            )
            for m in response.get("Messages", [])
        ]

    def delete(self, message: ReceivedMessage) -> bool:
        try:
            self._client.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)
        except SQS_ERRORS as exc:
            # The job's outcome is committed; a redelivery finds it finished and drops it.
            logger.warning("delete failed message=%s: %s", message.message_id, exc)
            return False
        return True

    def delete_many(self, messages: Sequence[ReceivedMessage]) -> int:
        """Delete messages in batches; returns how many SQS confirmed."""
        deleted = 0
        for start in range(0, len(messages), SQS_MAX_BATCH):
            chunk = messages[start : start + SQS_MAX_BATCH]
            try:
                response = self._client.delete_message_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m.receipt_handle}
                        for i, m in enumerate(chunk)
                    ],
                )
            except SQS_ERRORS as exc:
                logger.warning("delete of %s messages failed: %s", len(chunk), exc)
                continue
            for failure in response.get("Failed", []):
                logger.warning("delete failed for one message: %s", failure.get("Code"))
            deleted += len(response.get("Successful", []))
        return deleted

    def extend(self, message: ReceivedMessage, seconds: int) -> None:
        """Make the message invisible for ``seconds`` from now. Raises SQS errors."""
        self._client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=seconds
        )

    def release(self, message: ReceivedMessage, delay: int = 0) -> bool:
        """Let the message be received again after ``delay`` seconds (0: at once)."""
        try:
            self.extend(message, max(0, delay))
        except SQS_ERRORS as exc:
            logger.warning("release failed message=%s: %s", message.message_id, exc)
            return False
        return True

    def release_many(self, messages: Sequence[ReceivedMessage]) -> int:
        """Make messages visible again at once, in batches; returns how many were released."""
        released = 0
        for start in range(0, len(messages), SQS_MAX_BATCH):
            chunk = messages[start : start + SQS_MAX_BATCH]
            try:
                response = self._client.change_message_visibility_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": m.receipt_handle,
                            "VisibilityTimeout": 0,
                        }
                        for i, m in enumerate(chunk)
                    ],
                )
            except SQS_ERRORS as exc:
                logger.warning("release of %s messages failed: %s", len(chunk), exc)
                continue
            # A batch call can succeed with per-entry failures (AWS: check Failed every time).
            for failure in response.get("Failed", []):
                logger.warning("release failed for one message: %s", failure.get("Code"))
            released += len(response.get("Successful", []))
        return released

    def depth(self) -> int | None:
        try:
            attributes = self._client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except SQS_ERRORS as exc:
            logger.warning("queue depth not read: %s", exc)
            return None
        return int(attributes["ApproximateNumberOfMessages"])


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
