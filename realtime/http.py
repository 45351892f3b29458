"""The Redis-only progress endpoints' shared body: zero SQL, authentication included.

These run as plain async Django views (not DRF) on the async Redis client: no thread hop, no
database, and the document is returned as the JSON text the script built, not re-encoded.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from domains.tenants.auth import caller_from_access_token
from domains.tenants.caller import Caller, InvalidClaims
from project.api.errors import NotFound, ServiceUnavailable
from project.api.exception_handlers import error_body
from realtime import store
from realtime.keys import Topic
from realtime.store import RealtimeUnavailable

RETRY_AFTER_SECONDS = 2


def bearer_caller(request: HttpRequest) -> Caller | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        return None
    try:
        return caller_from_access_token(token.strip())
    except InvalidClaims:
        return None


async def progress_response(request: HttpRequest, topic: Topic) -> HttpResponse:
    caller = bearer_caller(request)
    response: HttpResponse
    if caller is None:
        response = JsonResponse(
            error_body("not_authenticated", _("A valid access token is required.")), status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    try:
        snap = await store.asnapshot(caller.tenant_id, topic)
    except RealtimeUnavailable:
        response = JsonResponse(
            error_body(ServiceUnavailable.code, ServiceUnavailable.default_detail), status=503
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if snap is None or not snap.visible_to(
        user_id=caller.user_id, sees_whole_tenant=caller.sees_whole_tenant
    ):
        # Missing and not-yours look the same; the client then reads the record once.
        return JsonResponse(error_body(NotFound.code, NotFound.default_detail), status=404)
    response = HttpResponse(snap.document, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
