"""The OpenAPI vocabulary every app's API shares: the one error component and its cases, the
success examples, the ``Retry-After`` header, the pattern of a trimmed text field.

drf-spectacular describes the DRF views from their serializers and ``extend_schema``; the
apps describe their answers with these pieces so that every error is the one ``Error``
component ``{code, detail, fields}`` (PROTOCOL.md §5). The project's schema class and the
operations outside DRF (``project/api/schema.py``) build on the same pieces.

No business app is imported here (docs/adr/0008-shared-kernel-in-domains-common.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

ERROR_COMPONENT = "Error"
BEARER_SCHEME = "bearerAuth"
PROTOCOL_DOC = "docs/PROTOCOL.md"

DESCRIPTION = f"""\
Job and video progress for the academy platform.

Authenticate with `POST /api/v1/auth/token/`, then send `Authorization: Bearer <access>`.
Every error has one shape, the `Error` component: `{{"code", "detail", "fields"}}`; `code` is
stable and machine-readable, `detail` is translated (`Accept-Language: en` or `ko`).

Live progress is pushed over a WebSocket at `/ws/v1/`. It is not an HTTP operation, so it is
not listed here: its frames, close codes and delivery rules are in `{PROTOCOL_DOC}` (section 4).
The progress endpoints below are the HTTP fallback for clients whose socket is down; they
answer the same state document as the WebSocket's `state` frames.
"""

# Characters Python's str.strip() removes (str.isspace), hence DRF's trim_whitespace.
_WHITESPACE = (
    r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)


def trimmed_text_pattern(*, forbidden: str = "") -> str:
    """A ``pattern`` for a trimmed, non-blank ``CharField``: at least one character that is not
    whitespace, no NUL, and none of ``forbidden`` (regex class syntax) between the first and
    last such character."""
    core = rf"[^{_WHITESPACE}\u0000{forbidden}]"
    if not forbidden:
        return rf"^[^\u0000]*{core}[^\u0000]*$"
    inner = rf"[^\u0000{forbidden}]"
    return rf"^[{_WHITESPACE}]*{core}(?:{inner}*{core})?[{_WHITESPACE}]*$"


# --- errors ---------------------------------------------------------------------------------
class ErrorSerializer(serializers.Serializer):
    """Every error answer (PROTOCOL.md §5)."""

    code = serializers.CharField(help_text="Stable, machine-readable: `not_found`, `invalid`, ...")
    detail = serializers.CharField(help_text="For people, in the caller's language.")
    # DRF's metaclass takes declared fields out of the class, so `Serializer.fields` stays.
    fields = serializers.DictField(  # type: ignore[assignment]
        help_text="Per-field messages for `invalid` (a field name to a list of messages, "
        "nested for nested fields); otherwise empty."
    )

    class Meta:
        ref_name = ERROR_COMPONENT


@dataclass(frozen=True, slots=True)
class ErrorCase:
    """One documented way an operation fails: its status, ``code`` and an example body."""

    status: int
    code: str
    detail: str
    fields: dict[str, Any] | None = None
    summary: str = ""
    name: str = ""  # the example's name when an operation has several of one code

    def example(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, "fields": self.fields or {}}


INVALID = ErrorCase(
    400,
    "invalid",
    "The request contains invalid data.",
    {"field": ["This field is required."]},
    "A field is missing or invalid",
)
PARSE_ERROR = ErrorCase(
    400,
    "parse_error",
    "JSON parse error - Expecting value: line 1 column 1 (char 0)",
    summary="The body is not what its Content-Type says",
)
NOT_AUTHENTICATED = ErrorCase(
    401,
    "not_authenticated",
    "Authentication credentials were not provided.",
    summary="No Authorization header",
)
TOKEN_NOT_VALID = ErrorCase(
    401, "token_not_valid", "The token is invalid or expired.", summary="A bad or expired token"
)
AUTHENTICATION_FAILED = ErrorCase(
    401,
    "authentication_failed",
    "Unable to log in with the provided credentials.",
    summary="Wrong credentials, or no such member",
)
PASSWORD_CHANGE_REQUIRED = ErrorCase(
    403,
    "password_change_required",  # domains.tenants.auth.IsTenantMember.code
    "Change your initial password first.",
    summary="The user still has an initial password (POST /api/v1/auth/password/)",
)
PERMISSION_DENIED = ErrorCase(
    403,
    "permission_denied",
    "Your role may not start this kind of job.",
    summary="The caller's role may not do this",
)
NOT_FOUND = ErrorCase(
    404,
    "not_found",
    "Not found.",
    summary="No such record in your tenant, or not yours to see",
)
CONFLICT = ErrorCase(
    409,
    "conflict",
    "This Idempotency-Key was already used for a different request.",
    summary="The Idempotency-Key was used for another request",
)
UNSUPPORTED_MEDIA_TYPE = ErrorCase(
    415,
    "unsupported_media_type",
    'Unsupported media type "text/plain" in request.',
    summary="A Content-Type this operation does not read",
)
UNAVAILABLE = ErrorCase(
    503,
    "unavailable",
    "The service is temporarily unavailable. Try again shortly.",
    summary="A backing service is down; retry after Retry-After seconds",
)
THROTTLED = ErrorCase(
    429,
    "throttled",
    "Too many attempts. Try again in 42 seconds.",
    summary="Too many attempts from this address or for this account; see Retry-After",
)
QUOTA_EXCEEDED = ErrorCase(
    429,
    "quota_exceeded",
    "You already have 20 unfinished jobs. Wait until one finishes.",
    summary="Too many unfinished jobs (per user or per tenant) or the day's message budget",
)

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    {"type": "integer", "minimum": 0},
    OpenApiParameter.HEADER,
    description="Seconds to wait before retrying.",
    response=[429, 503],
    required=True,
)


def error_responses(*cases: ErrorCase) -> dict[int, OpenApiResponse]:
    """``extend_schema(responses=...)`` entries: one ``Error`` response per status."""
    by_status: dict[int, list[ErrorCase]] = {}
    for case in cases:
        by_status.setdefault(case.status, []).append(case)
    return {
        status: OpenApiResponse(
            ErrorSerializer,
            description="; ".join(case.summary for case in group),
            examples=[_example(case) for case in group],
        )
        for status, group in by_status.items()
    }


def _example(case: ErrorCase) -> OpenApiExample:
    return OpenApiExample(
        case.name or case.code,
        value=case.example(),
        summary=case.summary,
        response_only=True,
        status_codes=[str(case.status)],
    )


def success_example(name: str, value: Any, *, status: int = 200) -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[str(status)])


# The state documents (PROTOCOL.md §3) are components of their own, ``JobState`` and
# ``VideoState``, added with the progress operations (project/api/schema.py); a DRF view that
# answers one refers to them by name.
STATE_COMPONENTS = {"job": "JobState", "video": "VideoState"}


def state_document_schema(kind: str) -> dict[str, str]:
    """The schema of a ``kind`` ("job" or "video") state document, for ``OpenApiResponse``."""
    return {"$ref": f"#/components/schemas/{STATE_COMPONENTS[kind]}"}


# --- authentication -------------------------------------------------------------------------
