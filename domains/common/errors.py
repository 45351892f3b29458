"""The project's error types. Services raise these; one handler renders them (PROTOCOL.md §5).

Every error reaches the client as ``{"code": ..., "detail": ..., "fields": {...}}``. ``code`` is
stable and machine-readable; ``detail`` is translated for the caller's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    status_code = 400
    code = "bad_request"
    default_detail: Any = _("The request could not be processed.")

    def __init__(self, detail: Any = None, *, fields: Mapping[str, Any] | None = None) -> None:
        self.detail = detail if detail is not None else self.default_detail
        self.fields = dict(fields or {})
        super().__init__(str(self.detail))


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "invalid"
    default_detail = _("The request contains invalid data.")


class AuthenticationFailed(ApplicationError):
    status_code = 401
    code = "authentication_failed"
    default_detail = _("Unable to log in with the provided credentials.")


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    default_detail = _("Not found.")


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"
    default_detail = _("You do not have permission to perform this action.")


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"
    default_detail = _("The request conflicts with the current state.")


class ServiceUnavailable(ApplicationError):
    status_code = 503
    code = "unavailable"
    default_detail = _("The service is temporarily unavailable. Try again shortly.")

    def __init__(
        self,
        detail: Any = None,
        *,
        fields: Mapping[str, Any] | None = None,
        retry_after: int = 1,
    ) -> None:
        super().__init__(detail, fields=fields)
        self.retry_after = retry_after


class QuotaExceeded(ApplicationError):
    """429: a quota of the caller or its tenant is used up; ``Retry-After`` says when to retry."""

    status_code = 429
    code = "quota_exceeded"
    default_detail = _("A usage limit has been reached. Try again later.")

    def __init__(self, detail: Any = None, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
