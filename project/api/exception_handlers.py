"""The one place where exceptions become HTTP error responses."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.encoding import force_str
from django.utils.translation import gettext as _
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from domains.common.errors import (
    ApplicationError,
    NotFound,
    QuotaExceeded,
    ServiceUnavailable,
    ValidationFailed,
)
from realtime.protocol import error_body

logger = logging.getLogger(__name__)


def _flatten(detail: Any) -> Any:
    """DRF error details (lists, dicts of ErrorDetail) as plain JSON-able messages."""
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return force_str(detail)


def _drf_code(exc: drf.APIException) -> str:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error in the shape of PROTOCOL.md §5."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        status, body = exc.status_code, error_body(exc.code, exc.detail, exc.fields)
        if isinstance(exc, ServiceUnavailable | QuotaExceeded):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, InvalidToken | TokenError):
        # simplejwt explains which token check failed; the client only needs to re-authenticate.
        status = 401
        body = error_body("token_not_valid", _("The token is invalid or expired."))
    elif isinstance(exc, drf.ValidationError):
        status = 400
        fields = _flatten(exc.detail)
        if not isinstance(fields, dict):
            fields = {"non_field_errors": fields}
        body = error_body(ValidationFailed.code, ValidationFailed.default_detail, fields)
    elif isinstance(exc, drf.APIException):
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else _flatten(exc.detail)
        body = error_body(_drf_code(exc), detail)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait))
        auth_header = getattr(exc, "auth_header", None)
        if status == 401 and auth_header:
            headers["WWW-Authenticate"] = auth_header
    elif isinstance(exc, Http404):
        status, body = 404, error_body(NotFound.code, NotFound.default_detail)
    elif isinstance(exc, RequestDataTooBig):
        # Django refuses from the Content-Length, before the body is read or parsed (F18).
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        status = 413
        body = error_body(
            "too_large", _("The request body is larger than %(limit)d bytes.") % {"limit": limit}
        )
    elif isinstance(exc, DjangoPermissionDenied):
        status, body = 403, error_body("permission_denied", _("Permission denied."))
    else:
        return None  # unexpected: Django logs it and handler500 renders the shape
    return Response(body, status=status, headers=headers)


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(NotFound.code, NotFound.default_detail), status=404)


def handler500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body("server_error", _("An unexpected error occurred. It has been logged.")),
        status=500,
    )
