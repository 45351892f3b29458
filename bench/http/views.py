"""Baseline views for the progress benchmark: the progress endpoint minus Redis.

``noop_api`` authenticates exactly like the progress endpoints (``realtime.http.bearer_caller``:
the stateless JWT check, no SQL) and answers a fixed state document of the same shape and size
class, so progress / no-op isolates the Redis read. ``noop_noauth_api`` skips the token check too.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse

from bench.http import sqlcount
from realtime.http import bearer_caller
from realtime.protocol import error_body

# What a PROCESSING job's document looks like (PROTOCOL.md §3), fixed.
NOOP_DOCUMENT = json.dumps(
    {
        "topic": "job:7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "seq": 2,
        "status": "PROCESSING",
        "progress": {
            "percent": 42,
            "step": "importing",
            "step_index": 3,
            "step_total": 5,
            "step_name_display": "학생 등록",
            "step_percent": 40,
            "remaining_seconds": 12,
        },
        "job_type": "excel_import",
        "error": None,
        "result": None,
        "result_in_db": False,
        "updated_at": 1763780000123,
    },
    ensure_ascii=False,
    separators=(",", ":"),
).encode()


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
