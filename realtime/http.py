"""The Redis-only progress endpoints' shared body: zero SQL, authentication included.

:func:`progress_reply` decides the answer from the ``Authorization`` header and the topic, on
the async Redis client, returning the document as the JSON text the script built (never
re-encoded). Two front doors use it: the Django views (``progress_response``; URL reversing,
the test client, any server) and, in front of Django, the ASGI fast path
(``realtime.fastpath``), which skips the middleware chain for these hot GETs.

A 200 is one coroutine down to the Redis reply: :func:`progress_reply` awaits
:func:`realtime.store.aprogress` (one ``HMGET``), whose document bytes are the body as stored.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import NamedTuple

from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _

from realtime import metrics, store
from realtime.auth import caller_from_access_token
from realtime.identity import Caller, InvalidClaims, sees_topic
from realtime.keys import Topic
from realtime.protocol import error_body
from realtime.state import TERMINAL_STATUSES
from realtime.store import RealtimeUnavailable

RETRY_AFTER_SECONDS = 2
_OK_HEADERS = (("Cache-Control", "no-store"),)
_TERMINAL = frozenset(status.encode() for status in TERMINAL_STATUSES)


class Reply(NamedTuple):
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def bearer_caller(authorization: str) -> Caller | None:
    scheme, _sep, token = authorization.partition(" ")
    if scheme != "Bearer" or not token:
        return None
    try:
        return caller_from_access_token(token.strip())
    except InvalidClaims:
        return None


def _error(status: int, code: str, detail: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, json.dumps(error_body(code, detail)).encode(), headers)


def _in(language: Callable[[], str] | None) -> contextlib.AbstractContextManager[None]:
    if language is None:
        return contextlib.nullcontext()
    return translation.override(language())


async def progress_reply(
    authorization: str, topic: Topic, *, language: Callable[[], str] | None = None
) -> Reply:
    """The answer to ``GET …/progress/`` (PROTOCOL.md §5), counted in the metrics
    (realtime/metrics.py) by outcome.

    Error details are in ``language()`` when given (called for error replies only: a 200
    has nothing to translate), else in the active language.
    """
    kind = topic.kind.value
    caller = bearer_caller(authorization)
    if caller is None:
        metrics.progress_request(kind, "unauthenticated")
        with _in(language):
            return _error(
                401,
                "not_authenticated",
                _("A valid access token is required."),
                ("WWW-Authenticate", 'Bearer realm="api"'),
            )
    if caller.must_change_password:
        # As every other endpoint but "me" and the password change (ADR 0102, audit F25):
        # from the token's claim, so still without SQL.
        metrics.progress_request(kind, "forbidden")
        with _in(language):
            return _error(403, "password_change_required", _("Change your initial password first."))
    try:
        read = await store.aprogress(caller.tenant_id, topic)
    except RealtimeUnavailable:
        metrics.progress_request(kind, "unavailable")
        with _in(language):
            return _error(
                503,
                "unavailable",
                _("The service is temporarily unavailable. Try again shortly."),
                ("Retry-After", str(RETRY_AFTER_SECONDS)),
            )
    if read is None or not sees_topic(caller, owner_id=read.owner_id):
        # Missing and not-yours look the same; the client then reads the record once.
        metrics.progress_request(kind, "not_found")
        with _in(language):
            return _error(404, "not_found", _("Not found."))
    metrics.progress_request(kind, "terminal" if read.status in _TERMINAL else "running")
    return Reply(200, read.document, _OK_HEADERS)


async def progress_response(request: HttpRequest, topic: Topic) -> HttpResponse:
    """The Django view body; the views are CSRF-exempt (bearer tokens only, no cookies)."""
    if request.method in ("GET", "HEAD"):
        reply = await progress_reply(request.headers.get("Authorization", ""), topic)
    else:
        reply = _error(405, "method_not_allowed", _("Method not allowed."), ("Allow", "GET, HEAD"))
    response = HttpResponse(reply.body, status=reply.status, content_type="application/json")
    for name, value in reply.headers:
        response[name] = value
    return response
