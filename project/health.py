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

from domains.common.aws import probe_client
from domains.common.errors import ServiceUnavailable
from realtime.clients import async_redis
from realtime.protocol import error_body

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
    """``(name, None)`` when the probe answered, else ``(name, a fixed word)``.

    The probe is unauthenticated (load balancers call it), so the answer says only what is
    down: exception text names hosts, ports and driver details (audit F22). The log has it.
    """
    try:
        await asyncio.wait_for(probe, timeout=CHECK_TIMEOUT)  # type: ignore[arg-type]
    except TimeoutError:
        logger.warning("readiness check %s timed out after %ss", name, CHECK_TIMEOUT)
        return name, "timeout"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; it is logged
        logger.warning("readiness check %s failed: %r", name, exc)
        return name, "unavailable"
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
