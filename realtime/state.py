"""The state document's vocabulary and the change a publisher submits. Pure logic.

The rules themselves (one-way state machine, stale attempts, percent never backwards, seq,
TTLs) run inside Redis, atomically, in ``lua/state.lua``; this module describes their inputs
and outputs in Python terms and validates what can be validated before the round trip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from realtime.identity import Caller, sees_topic
from realtime.keys import Topic, TopicKind

# PROTOCOL.md §2
RESULT_MAX_BYTES = 10_240
RUNNING_TTL_SECONDS = 21_600

JOB_STATUSES = ("PENDING", "PROCESSING", "DONE", "FAILED", "CANCELLED")
VIDEO_STATUSES = ("UPLOADED", "PROCESSING", "READY", "FAILED", "CANCELLED")
STATUSES = {TopicKind.JOB: JOB_STATUSES, TopicKind.VIDEO: VIDEO_STATUSES}
TERMINAL_STATUSES = frozenset({"DONE", "FAILED", "READY", "CANCELLED"})

PROGRESS_FIELDS = (
    "percent",
    "step",
    "step_index",
    "step_total",
    "step_name_display",
    "step_percent",
    "remaining_seconds",
)


def is_terminal(status: str | None) -> bool:
    return status in TERMINAL_STATUSES


class InvalidChange(ValueError):
    """A change that can never be applied (unknown status, percent out of range, …)."""


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float | None = None
    step: str | None = None
    step_index: int | None = None
    step_total: int | None = None
    step_name_display: str | None = None
    step_percent: float | None = None
    remaining_seconds: int | None = None

    def as_fields(self) -> dict[str, Any]:
        return {
            name: getattr(self, name) for name in PROGRESS_FIELDS if getattr(self, name) is not None
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One update of a topic's state. Fields left as None are not changed."""

    status: str | None = None
    progress: Progress | None = None
    attempt: int | None = None
    owner_id: int | None = None
    job_type: str | None = None
    error: str | None = None
    result: Any = None
    result_in_db: bool = False
    hls_path: str | None = None
    duration: float | None = None
    # A video's lecture session: set by the first change that names it, never changed after.
    session_id: int | None = None
    # True records a cancel request (PROTOCOL.md §2); False leaves the stored flag as it is,
    # since a request is never withdrawn.
    cancel_requested: bool = False

    @property
    def is_progress_only(self) -> bool:
        return self.status is None and self.progress is not None

    def validate(self, kind: TopicKind) -> None:
        if self.status is not None and self.status not in STATUSES[kind]:
            raise InvalidChange(f"{self.status!r} is not a {kind.value} status")
        percent = self.progress.percent if self.progress is not None else None
        if percent is not None and not 0 <= percent <= 100:
            raise InvalidChange(f"percent {percent} is outside 0..100")
        if self.attempt is not None and self.attempt < 0:
            raise InvalidChange("attempt must not be negative")
        if self.session_id is not None and (
            kind is not TopicKind.VIDEO or not 0 < self.session_id < 2**63
        ):
            raise InvalidChange("session_id is a video's, from 1 to 2**63 - 1")

    def encode(self) -> str:
        """The JSON argument of the script. Results over the limit never leave the process."""
        body: dict[str, Any] = {}
        for name in ("status", "attempt", "owner_id", "job_type", "error", "hls_path", "duration"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.session_id is not None:
            body["session_id"] = str(self.session_id)  # exact in the script (a bigint)
        if self.progress is not None:
            body["progress"] = self.progress.as_fields()
        if self.result is not None:
            encoded = json.dumps(self.result, separators=(",", ":"), ensure_ascii=False)
            if len(encoded.encode()) > RESULT_MAX_BYTES:
                body["result_in_db"] = True
            else:
                body["result"] = encoded
        if self.result_in_db:
            body["result_in_db"] = True
        if self.cancel_requested:
            body["cancel_requested"] = True
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# (epoch, seq): the order of a topic's states (PROTOCOL.md §2). A hash Redis lost and that was
# created again starts over at seq 1 of a larger epoch, so tuples compare the right way round.
Position = tuple[int, int]
NO_POSITION: Position = (0, 0)


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What the script answered: whether the change was applied and the state after it.

    ``frame`` is the WebSocket ``state`` frame as JSON text (None when the topic does not
    exist); a rejected change carries the current state and published nothing.
    """

    accepted: bool
    reason: str
    seq: int
    frame: str | None = field(repr=False, default=None)
    epoch: int = 0

    @property
    def position(self) -> Position:
        return (self.epoch, self.seq)

    @property
    def document(self) -> dict[str, Any] | None:
        """The state document (PROTOCOL.md §3), without the frame's ``type``."""
        if self.frame is None:
            return None
        doc = json.loads(self.frame)
        doc.pop("type", None)
        return doc


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A topic's current state as stored: the document (JSON text) and who owns it."""

    topic: Topic
    seq: int
    status: str
    owner_id: int | None
    document: str  # JSON text of the state document, as served by the progress endpoints
    frame: str  # the same with "type": "state", as sent over the WebSocket ("" if not read)
    epoch: int = 0

    @property
    def position(self) -> Position:
        return (self.epoch, self.seq)

    def visible_to(self, caller: Caller) -> bool:
        """PROTOCOL.md §4: staff and admin see every topic of their tenant, others their own."""
        return sees_topic(caller, owner_id=self.owner_id)
