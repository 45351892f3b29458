"""The wire format of PROTOCOL.md §3-§5 as types: the state document, every frame, the codes.

The server builds the state document in ``lua/state.lua`` (``build``) and the control frames
here, through the small constructors below (the consumer sends nothing else). Golden samples of
every shape live in ``tests/fixtures/protocol/``; pytest checks them against these types and
against what the real script and consumer produce, vitest against the client's parser, so the
three languages cannot drift apart unnoticed.

:func:`check_state_document` and :func:`check_server_frame` validate a decoded JSON value
against the types: exact key sets (no key missing, none extra), value types and the
``Literal`` codes. They answer with a list of problems rather than raising, for tests and for
diagnostics.

Pure logic: no Django, no Channels. No ``from __future__ import annotations`` either: the
checker reads these annotations at run time.
"""

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    TypedDict,
    Union,
    get_args,
    get_origin,
)

from realtime.keys import InvalidTopic, Topic


@dataclass(frozen=True, slots=True)
class _Rule:
    """A value rule the type alone does not say, checked by :func:`check_server_frame`."""

    name: str

    def broken_by(self, value: Any) -> bool:
        if self.name == "topic":
            try:
                Topic.parse(value)
            except InvalidTopic:
                return True
            return False
        return bool(self.name == "non-negative" and value < 0)


# A topic name, ``job:<uuid>`` or ``video:<uuid>`` (§1), and a seq, which starts at 0.
TopicName = Annotated[str, _Rule("topic")]
Seq = Annotated[int, _Rule("non-negative")]
# A tenant feed (§1): every change of every job or video of the caller's tenant, staff only.
FeedName = Literal["jobs", "videos"]
# What a subscribe names and its subscribed/unsubscribed answers echo: a topic or a feed.
SubscriptionName = Union[TopicName, FeedName]  # noqa: UP007 - Annotated | Literal at run time
# Set once when a status hash is created (Redis TIME in ms); a hash created again after Redis
# lost it gets a larger one. (epoch, seq) orders a topic's states (§2).
Epoch = Annotated[int, _Rule("non-negative")]

# --- the connection (§4) ----------------------------------------------------------------------
SUBPROTOCOL = "realtime.v1"
BEARER_PREFIX = "bearer."

CLOSE_UNAUTHENTICATED = 4001  # not authenticated, or the token expired
CLOSE_ORIGIN = 4003  # the Origin header is not an allowed origin
CLOSE_POLICY = 4008  # frame too large, flooding, a client that stops reading
CloseCode = Literal[4001, 4003, 4008]

# The codes of WebSocket error frames. "unavailable": Redis could not be read on subscribe.
ErrorCode = Literal[
    "not_found", "bad_request", "rate_limited", "too_many_subscriptions", "unavailable"
]

JobStatus = Literal["PENDING", "PROCESSING", "DONE", "FAILED", "CANCELLED"]
VideoStatus = Literal["UPLOADED", "PROCESSING", "READY", "FAILED", "CANCELLED"]


# --- the state document (§3) ------------------------------------------------------------------
class ProgressDocument(TypedDict):
    """Every field is present once a topic has progress; one the worker never sent is null."""

    percent: float | None
    step: str | None
    step_index: int | None
    step_total: int | None
    step_name_display: str | None
    step_percent: float | None
    remaining_seconds: float | None


class JobDocument(TypedDict):
    topic: TopicName
    seq: Seq
    epoch: Epoch
    status: JobStatus
    progress: ProgressDocument | None  # null before any progress and once terminal
    error: str | None
    cancel_requested: bool  # a cancel was asked for; the worker ends the job CANCELLED
    updated_at: int  # epoch milliseconds, Redis' clock
    job_type: str | None
    result_in_db: bool  # the result was too large for Redis: read the detail endpoint
    result: Any  # the job's JSON result when DONE, inline; else null


class VideoDocument(TypedDict):
    topic: TopicName
    seq: Seq
    epoch: Epoch
    status: VideoStatus
    progress: ProgressDocument | None
    error: str | None
    cancel_requested: bool
    updated_at: int
    hls_path: str | None
    duration: float | None  # seconds
    session_id: int | None  # the lecture session; null only for a state written before it was


StateDocument = JobDocument | VideoDocument


# --- server frames (§4) -----------------------------------------------------------------------
class JobStateFrame(JobDocument):
    type: Literal["state"]


class VideoStateFrame(VideoDocument):
    type: Literal["state"]


StateFrame = JobStateFrame | VideoStateFrame


class SubscribedFrame(TypedDict):
    type: Literal["subscribed"]
    topic: SubscriptionName
    seq: Seq  # a feed has no position of its own: 0
    epoch: Epoch  # 0 for a feed


class UnsubscribedFrame(TypedDict):
    type: Literal["unsubscribed"]
    topic: SubscriptionName


class ErrorFrame(TypedDict):
    type: Literal["error"]
    topic: str | None  # null when the offending frame named no topic
    code: ErrorCode
    detail: str


class TokenExpiringFrame(TypedDict):
    type: Literal["token_expiring"]
    expires_at: int  # epoch seconds


class AuthOkFrame(TypedDict):
    type: Literal["auth_ok"]
    expires_at: int


class PongFrame(TypedDict):
    type: Literal["pong"]


ControlFrame = (
    SubscribedFrame | UnsubscribedFrame | ErrorFrame | TokenExpiringFrame | AuthOkFrame | PongFrame
)
ServerFrame = StateFrame | ControlFrame


# --- client frames (§4) -----------------------------------------------------------------------
class SubscribeFrame(TypedDict):
    type: Literal["subscribe"]
    topic: str
    since: NotRequired[int]
    epoch: NotRequired[int]  # only with since: the epoch that seq belongs to


class UnsubscribeFrame(TypedDict):
    type: Literal["unsubscribe"]
    topic: str


class AuthFrame(TypedDict):
    type: Literal["auth"]
    token: str


class PingFrame(TypedDict):
    type: Literal["ping"]


ClientFrame = SubscribeFrame | UnsubscribeFrame | AuthFrame | PingFrame


# --- HTTP errors (§5) -------------------------------------------------------------------------
class ErrorBody(TypedDict):
    """The one error shape of every HTTP answer."""

    code: str
    detail: str
    fields: dict[str, Any]


def error_body(code: str, detail: Any, fields: dict[str, Any] | None = None) -> ErrorBody:
    """The HTTP error body; ``detail`` may be a lazy translation, rendered here."""
    text = detail.decode() if isinstance(detail, bytes) else str(detail)
    return {"code": code, "detail": text, "fields": fields or {}}


# --- constructors of the control frames the consumer sends ------------------------------------
def subscribed(topic: str, seq: int, epoch: int) -> SubscribedFrame:
    return {"type": "subscribed", "topic": topic, "seq": seq, "epoch": epoch}


def unsubscribed(topic: str) -> UnsubscribedFrame:
    return {"type": "unsubscribed", "topic": topic}


def error(topic: str | None, code: ErrorCode, detail: str) -> ErrorFrame:
    return {"type": "error", "topic": topic, "code": code, "detail": detail}


def token_expiring(expires_at: int) -> TokenExpiringFrame:
    return {"type": "token_expiring", "expires_at": expires_at}


def auth_ok(expires_at: int) -> AuthOkFrame:
    return {"type": "auth_ok", "expires_at": expires_at}


def pong() -> PongFrame:
    return {"type": "pong"}


# --- checking decoded JSON against the types ---------------------------------------------------
_CONTROL_FRAMES: dict[str, type] = {
    "subscribed": SubscribedFrame,
    "unsubscribed": UnsubscribedFrame,
    "error": ErrorFrame,
    "token_expiring": TokenExpiringFrame,
    "auth_ok": AuthOkFrame,
    "pong": PongFrame,
}
_DOCUMENTS: dict[str, tuple[type, type]] = {
    "job": (JobDocument, JobStateFrame),
    "video": (VideoDocument, VideoStateFrame),
}


def check_state_document(value: object) -> list[str]:
    """Problems of ``value`` as a state document (the progress body); empty when it is one."""
    return _check_document(value, framed=False)


def check_server_frame(value: object) -> list[str]:
    """Problems of ``value`` as a WebSocket server frame; empty when it is one."""
    if not isinstance(value, dict):
        return [f"a frame is a JSON object, not {_json_name(value)}"]
    kind = value.get("type")
    if kind == "state":
        return _check_document(value, framed=True)
    frame_type = _CONTROL_FRAMES.get(kind) if isinstance(kind, str) else None
    if frame_type is None:
        return [f"unknown frame type {kind!r}"]
    return _problems(value, frame_type, "frame")


def check_error_body(value: object) -> list[str]:
    """Problems of ``value`` as an HTTP error body."""
    return _problems(value, ErrorBody, "body")


def _check_document(value: object, *, framed: bool) -> list[str]:
    if not isinstance(value, dict):
        return [f"a state document is a JSON object, not {_json_name(value)}"]
    topic = value.get("topic")
    kind = topic.split(":", 1)[0] if isinstance(topic, str) else None
    if kind not in _DOCUMENTS:
        return [f"topic {topic!r} names no job or video"]
    document_type, frame_type = _DOCUMENTS[kind]
    return _problems(value, frame_type if framed else document_type, "document")


def _problems(value: object, expected: Any, path: str) -> list[str]:
    """What keeps ``value`` from being an ``expected``; handles the types used above."""
    if expected is Any:
        return []
    if get_origin(expected) is Annotated:
        base, *rules = get_args(expected)
        found = _problems(value, base, path)
        if not found:
            found = [
                f"{path}: {value!r} is not a {rule.name} value"
                for rule in rules
                if rule.broken_by(value)
            ]
        return found
    if typing.is_typeddict(expected):
        return _typeddict_problems(value, expected, path)
    origin = get_origin(expected)
    if origin is Literal:
        allowed = get_args(expected)
        ok = any(type(value) is type(option) and value == option for option in allowed)
        return [] if ok else [f"{path}: {value!r} is not one of {', '.join(map(repr, allowed))}"]
    if origin in (Union, types.UnionType):
        options = get_args(expected)
        if any(not _problems(value, option, path) for option in options):
            return []
        return [f"{path}: {_json_name(value)} is not {_type_name(expected)}"]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            return [f"{path}: {_json_name(value)} is not an object"]
        return []
    if expected is type(None):
        ok = value is None
    elif expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif expected is str:
        ok = isinstance(value, str)
    else:
        raise TypeError(f"the protocol checker does not know {expected!r}")
    return [] if ok else [f"{path}: {_json_name(value)} is not {_type_name(expected)}"]


def _typeddict_problems(value: object, expected: Any, path: str) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{path}: {_json_name(value)} is not an object"]
    hints = typing.get_type_hints(expected, include_extras=True)
    required: frozenset[str] = expected.__required_keys__
    found = [f"{path}: missing {key!r}" for key in sorted(required - value.keys())]
    found += [f"{path}: unexpected {key!r}" for key in sorted(value.keys() - hints.keys())]
    for key, hint in hints.items():
        if key in value:
            found += _problems(value[key], hint, f"{path}.{key}")
    return found


def _type_name(expected: Any) -> str:
    if isinstance(expected, type):
        return {type(None): "null", bool: "a boolean", int: "an integer", float: "a number"}.get(
            expected, expected.__name__
        )
    return str(expected).replace("typing.", "")


def _json_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
