"""The OpenAPI examples and error answers of the token endpoints (``apis.py``)."""

from __future__ import annotations

from domains.common import openapi

_ACCESS = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJl"
_REFRESH = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl"

TOKENS_EXAMPLE = openapi.success_example(
    "Tokens",
    {
        "access": _ACCESS,
        "refresh": _REFRESH,
        "access_expires_at": "2026-12-01T09:15:00Z",
        "must_change_password": False,
    },
)
REFRESHED_EXAMPLE = openapi.success_example(
    "Refreshed", {"access": _ACCESS, "access_expires_at": "2026-12-01T09:30:00Z"}
)
ME_EXAMPLE = openapi.success_example(
    "Me",
    {
        "user_id": 42,
        "tenant_id": 1,
        "role": "staff",
        "expires_at": 1764580500,
        "must_change_password": False,
    },
)

# One answer for every failed login (no such tenant, user or membership, wrong password).
TOKEN_ERRORS = openapi.error_responses(
    openapi.INVALID, openapi.AUTHENTICATION_FAILED, openapi.THROTTLED
)

PASSWORD_CHANGE_ERRORS = openapi.error_responses(
    openapi.ErrorCase(
        400,
        "invalid",
        "The request contains invalid data.",
        {"current_password": ["The current password is not correct."]},
        "The current password is wrong, or the new one breaks the password rules",
    ),
    openapi.ErrorCase(
        401,
        "authentication_failed",
        "Unable to log in with the provided credentials.",
        summary="The token's membership no longer exists",
    ),
    openapi.THROTTLED,
)
