"""``GET …/progress/`` answered in front of Django's middleware chain (ASGI).

The progress endpoints are the hottest HTTP path: every client whose socket is down polls
them every 1 to 3 s. Under ASGI, Django runs each classic middleware hook on a worker thread
(8 of the project's 9 are classic), and a thread per request, so a request that needs no
session, CSRF, user or message paid most of its CPU for those hops (bench/http/RESULTS.md:
9.3 ms of a 9.3 ms no-op request, against 3.7 ms with only the request-id middleware).

This ASGI wrapper answers exactly the two progress routes for ``GET``/``HEAD`` itself, with
the same body as the Django views (:func:`realtime.http.progress_reply`) and the parts of the
middleware these responses need: Host validation (anything doubtful falls through to Django,
which answers it as before), the request id, the caller's language, and the security headers.
Every other request, and every other method on these paths, goes to Django unchanged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import translation
from django_guid import clear_guid, set_guid

from realtime.http import Reply, progress_reply
from realtime.keys import Topic

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_UUID = r"(?P<id>[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})"
# The same routes as domains/jobs/urls.py and domains/videos/urls.py ("job-progress",
# "video-progress"); tests/integration/realtime/test_progress_fastpath.py keeps them in step.
ROUTES: tuple[tuple[re.Pattern[str], Callable[[uuid.UUID], Topic]], ...] = (
    (re.compile(rf"^/api/v1/jobs/{_UUID}/progress/$"), Topic.job),
    (re.compile(rf"^/media/videos/{_UUID}/progress/$"), Topic.video),
)
REQUEST_ID_HEADER = b"x-request-id"
_MAX_REQUEST_ID = 200


def route(path: str) -> Topic | None:
    for pattern, topic_of in ROUTES:
        if (match := pattern.match(path)) is not None:
            return topic_of(uuid.UUID(match["id"]))
    return None


class ProgressFastPath:
    """Wraps the Django ASGI app; serves the progress routes, passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            topic = route(scope["path"])
            if topic is not None:
                headers = _headers(scope)
                if _host_allowed(headers.get(b"host", b"").decode("latin-1")):
                    await self._serve(scope, send, topic, headers)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, scope: Scope, send: Send, topic: Topic, headers: dict[bytes, bytes]
    ) -> None:
        request_id = headers.get(REQUEST_ID_HEADER, b"").decode("latin-1")[:_MAX_REQUEST_ID]
        request_id = request_id or uuid.uuid4().hex
        set_guid(request_id)  # log lines of this request carry it, as under the middleware
        try:
            reply = await progress_reply(
                headers.get(b"authorization", b"").decode("latin-1"),
                topic,
                # Only error details are translated: the language is worked out for them only.
                language=lambda: _language(headers.get(b"accept-language", b"")),
            )
        finally:
            clear_guid()
        await _send(send, reply, request_id, head=scope["method"] == "HEAD")


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", ())}


# Host header -> (the ALLOWED_HOSTS object and DEBUG it was checked against, verdict). A
# client sends the same Host on every request; overridden settings (a new list) miss.
_host_verdicts: dict[str, tuple[object, bool, bool]] = {}


def _host_allowed(host: str) -> bool:
    known = _host_verdicts.get(host)
    if known is not None and known[0] is settings.ALLOWED_HOSTS and known[1] == settings.DEBUG:
        return known[2]
    domain, _port = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # Django's own DEBUG default
    verdict = bool(domain) and validate_host(domain, allowed)
    if len(_host_verdicts) >= 1024:  # bounded: a client could send any Host
        _host_verdicts.clear()
    _host_verdicts[host] = (settings.ALLOWED_HOSTS, settings.DEBUG, verdict)
    return verdict


def _language(header: bytes) -> str:
    """The first supported language of ``Accept-Language`` (by q), else LANGUAGE_CODE."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.decode("latin-1").split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag))
    for _q, _i, tag in sorted(weighted):
        try:
            return translation.get_supported_language_variant(tag)
        except LookupError:
            continue
    return str(settings.LANGUAGE_CODE)


def _security_headers() -> list[tuple[bytes, bytes]]:
    """What SecurityMiddleware and XFrameOptionsMiddleware add to a JSON response."""
    headers = []
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        value = policy if isinstance(policy, str) else ",".join(policy)
        headers.append((b"referrer-policy", value.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(
            (b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode())
        )
    headers.append((b"x-frame-options", settings.X_FRAME_OPTIONS.encode()))
    return headers


async def _send(send: Send, reply: Reply, request_id: str, *, head: bool) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(reply.body)).encode()),
        (b"x-request-id", request_id.encode("latin-1")),
        (b"access-control-expose-headers", b"X-Request-ID"),
        (b"x-content-type-options", b"nosniff"),
        *_security_headers(),
        (b"vary", b"Accept-Language"),
        *((name.lower().encode(), value.encode("latin-1")) for name, value in reply.headers),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else reply.body})
