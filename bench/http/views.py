"""Baseline views for the progress benchmark: the progress endpoint minus Redis.

``noop_api`` authenticates exactly like the progress endpoints (``realtime.http.bearer_caller``:
the stateless JWT check, no SQL) and answers a fixed state document of the same shape and size
class, so progress / no-op isolates the Redis read. ``noop_noauth_api`` skips the token check too.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from bench.http import sqlcount
from bench.http.document import NOOP_DOCUMENT
from realtime.http import bearer_caller
from realtime.protocol import error_body


def _document_response() -> HttpResponse:
    response = HttpResponse(NOOP_DOCUMENT, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


async def noop_api(request: HttpRequest) -> HttpResponse:
    """The progress endpoint's authentication, then a constant document: no Redis, no SQL."""
    if bearer_caller(request.headers.get("Authorization", "")) is None:
        return JsonResponse(error_body("not_authenticated", "token required"), status=401)
    return _document_response()


async def noop_noauth_api(request: HttpRequest) -> HttpResponse:
    """A constant document: Django's request/response cycle and middleware only."""
    return _document_response()


async def sql_count_api(request: HttpRequest) -> HttpResponse:
    """How many SQL statements this server process has executed (itself runs none)."""
    return JsonResponse({"statements": sqlcount.statements()})
