"""The worker's view of its queue: timings, the per-kind concurrency caps, the redrive policy.

Timings come from ``settings.WORKER_QUEUES``; the per-kind concurrency caps are fixed here, in
code, because they protect the machines the workers run on (GPU memory, ffmpeg processes, the
mail provider's rate) rather than tune them. :meth:`QueueConfig.problems` is checked at worker
start (docs/adr/0004-worker-leases-and-attempt-fencing.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from domains.common.aws import sqs_client
from domains.jobs.dispatch import QueueKind, queue_url, queue_url_by_name

# AWS limit (SQS API reference).
SQS_MAX_VISIBILITY = 43_200

# Hard caps on concurrent jobs per worker process (ARCHITECTURE.md "Job lifecycle").
HARD_CONCURRENCY = {QueueKind.AI: 5, QueueKind.VIDEO: 3, QueueKind.MESSAGING: 5}


@dataclass(frozen=True, slots=True)
class Extension:
    visibility: int  # the message stays invisible this many seconds from now
    lease: int  # the database lease ends this many seconds from now (a margin earlier)


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

    def extension(self, elapsed: float) -> Extension | None:
        """How far a heartbeat ``elapsed`` seconds after the receive extends visibility and
        lease (seconds from now); None once the kind's visibility cap leaves no room."""
        room = self.max_visibility - elapsed
        visibility = int(min(self.visibility_timeout, room))
        lease = visibility - self.lease_margin
        if lease < 1:
            return None
        return Extension(visibility=visibility, lease=lease)

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


def dlq_url(kind: QueueKind | str) -> str | None:
    """The dead-letter queue the kind's queue redrives to, read from its RedrivePolicy."""
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=queue_url(kind), AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    policy = attributes.get("RedrivePolicy")
    if not policy:
        return None
    arn = json.loads(policy)["deadLetterTargetArn"]
    return queue_url_by_name(arn.rsplit(":", 1)[-1])


def max_receive_count(kind: QueueKind | str) -> int:
    """The queue's redrive maxReceiveCount as configured on the queue (the setting otherwise)."""
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=queue_url(kind), AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    policy = attributes.get("RedrivePolicy")
    if policy:
        return int(json.loads(policy)["maxReceiveCount"])
    return int(settings.SQS_MAX_RECEIVE_COUNT)
