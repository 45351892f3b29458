"""The runner's side of one SQS queue: receive, delete, extend and release messages.

Every call is one SQS request; nothing is buffered. Errors are the caller's to judge: a
failed heartbeat extension means the lease is lost, a failed delete only means a duplicate
delivery later (which the claim turns into a no-op).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from project.aws import sqs_client
from project.queues import SQS_MAX_BATCH

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

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


class QueueClient:
    def __init__(self, url: str, client: SQSClient | None = None) -> None:
        self.url = url
        self._client = client or sqs_client()

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
        now = time.monotonic()
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
