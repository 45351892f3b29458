"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from project.api.errors import ServiceUnavailable
from project.api.exception_handlers import error_body
from project.aws import probe_client
from realtime.clients import async_redis

logger = logging.getLogger(__name__)
CHECK_TIMEOUT = 3.0


@csrf_exempt  # probes read no cookies: other methods get 405, not a CSRF page
@require_safe
async def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()  # hand the connection back to the pool at once


async def _check(name: str, probe: object) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe, timeout=CHECK_TIMEOUT)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; it is reported
        logger.warning("readiness check %s failed: %r", name, exc)
        return name, f"{type(exc).__name__}: {exc}"[:300]
    return name, None


@csrf_exempt
@require_safe
async def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: database, Redis and the queue endpoint answer. 503 names what failed."""
    results = await asyncio.gather(
        _check("database", sync_to_async(_database_ping)()),
        _check("redis", async_redis().ping()),
        _check("queue", asyncio.to_thread(probe_client().list_queues, MaxResults=1)),
    )
    failed = {name: error for name, error in results if error is not None}
    if failed:
        detail = _("Not ready: %(names)s") % {"names": ", ".join(sorted(failed))}
        response = JsonResponse(error_body(ServiceUnavailable.code, detail, failed), status=503)
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok", "checks": {name: "ok" for name, _e in results}})
