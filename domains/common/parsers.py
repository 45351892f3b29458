"""The API's JSON parser: the body's size is checked before it is read, its depth after.

DRF hands a parser the raw request stream, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` never
applies to JSON, and ``json.loads`` raises ``RecursionError`` (not ``ValueError``) on deep
nesting, which became a 500 (audit F18). Here a body over the limit is refused from its
Content-Length before a byte is read (and, without one, after reading one byte past the limit),
and nesting deeper than any payload of this API is a 400 in the one error shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

# The deepest document this API takes is ``{"payload": {"recipients": [...]}}``; job payloads
# are JSON objects of a few levels. Far below Python's recursion limit.
JSON_MAX_DEPTH = 32


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"
    default_detail = "The request body is too large."


class BoundedJSONParser(JSONParser):
    """``JSONParser`` with the body limit of ``DATA_UPLOAD_MAX_MEMORY_SIZE`` and a depth cap."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = context.get("request")
        declared = _content_length(request.META if request is not None else {})
        if limit is not None and declared is not None and declared > limit:
            raise _too_large(limit)
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise _too_large(limit)
        return _loads(body, encoding=context.get("encoding", settings.DEFAULT_CHARSET))


def _loads(body: bytes, *, encoding: str) -> Any:
    """The document in ``body``; ParseError for anything that is not a JSON document of at most
    ``JSON_MAX_DEPTH`` levels."""
    try:
        data = json.loads(body.decode(encoding), parse_constant=json.strict_constant)
    except RecursionError:
        raise exceptions.ParseError(_("The JSON document is nested too deeply.")) from None
    except ValueError as exc:
        raise exceptions.ParseError(
            _("The body is not valid JSON: %(error)s") % {"error": exc}
        ) from exc
    if _deeper_than(data, JSON_MAX_DEPTH):
        raise exceptions.ParseError(_("The JSON document is nested too deeply."))
    return data


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (iterative: no recursion)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _content_length(meta: Mapping[str, Any]) -> int | None:
    try:
        return int(meta.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(_("The request body is larger than %(limit)d bytes.") % {"limit": limit})
