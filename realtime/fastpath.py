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

It is the outermost layer of ``project.asgi.application`` and has no frame of its own: its
``__call__`` is a plain function returning the coroutine it picked (the progress reply, or the
inner application's call), marked as a coroutine function so servers treat it as ASGI 3. What
does not change between requests is worked out once and remembered (the fixed headers, the Host
verdicts, the route of a path), and forgotten when a setting changes (``setting_changed``: the
tests' ``override_settings``). ADR 0018 has the figures.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.core.signals import setting_changed
from django.http.request import split_domain_port, validate_host
from django.utils import translation
from django_guid.context import guid as _guid

from realtime.http import progress_reply
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
# Paths whose route is remembered; a poller asks for the same few paths again and again, and
# any client can send any path, hence the bound (the whole memory is dropped when full).
ROUTE_CACHE_SIZE = 4096
HOST_CACHE_SIZE = 1024
# uuid4's version (4) and variant (RFC 4122) bits, over 128 random bits.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)

_routes: dict[str, Topic | None] = {}


def route(path: str) -> Topic | None:
    try:
        return _routes[path]
    except KeyError:
        pass
    topic = None
    for pattern, topic_of in ROUTES:
        if (match := pattern.match(path)) is not None:
            topic = topic_of(uuid.UUID(match["id"]))
            break
    if len(_routes) >= ROUTE_CACHE_SIZE:
        _routes.clear()
    _routes[path] = topic
    return topic


class ProgressFastPath:
    """Wraps the ASGI app; serves the progress routes, passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    # Not ``async``: the coroutine returned is the progress reply's or the inner app's, so a
    # request passes through no frame of this layer.
    @markcoroutinefunction
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            topic = route(scope["path"])
            if topic is not None:
                headers = {name.lower(): value for name, value in scope.get("headers", ())}
                if _host_allowed(headers.get(b"host", b"")):
                    return _serve(scope["method"] == "HEAD", send, topic, headers)
        return self.app(scope, receive, send)


def request_id() -> str:
    """A new request id: uuid4's hex form, from ``random`` (ids correlate log lines; they are
    not secrets, and ``random`` is reseeded in every forked process)."""
    return "%032x" % (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)


async def _serve(head: bool, send: Send, topic: Topic, headers: dict[bytes, bytes]) -> None:
    given = headers.get(REQUEST_ID_HEADER)
    rid = given.decode("latin-1")[:_MAX_REQUEST_ID] if given else request_id()
    # django-guid's context variable, as its middleware sets it: this request's log lines
    # carry the id. The request runs in a task of its own, so the value ends with it; it is
    # reset anyway, for a server that runs several requests in one context.
    token = _guid.set(rid)
    try:
        reply = await progress_reply(
            headers.get(b"authorization", b"").decode("latin-1"),
            topic,
            # Only error details are translated: the language is worked out for them only.
            language=lambda: _language(headers.get(b"accept-language", b"")),
        )
    finally:
        _guid.reset(token)
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [
                *_fixed_headers(),
                (b"content-length", b"%d" % len(reply.body)),
                (b"x-request-id", rid.encode("latin-1")),
                *_wire(reply.headers),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else reply.body})


# Host header -> verdict. A client sends the same Host on every request.
_host_verdicts: dict[bytes, bool] = {}


def _host_allowed(host: bytes) -> bool:
    try:
        return _host_verdicts[host]
    except KeyError:
        pass
    domain, _port = split_domain_port(host.decode("latin-1"))
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # Django's own DEBUG default
    verdict = bool(domain) and validate_host(domain, allowed)
    if len(_host_verdicts) >= HOST_CACHE_SIZE:  # bounded: a client could send any Host
        _host_verdicts.clear()
    _host_verdicts[host] = verdict
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


_fixed: list[tuple[bytes, bytes]] = []


def _fixed_headers() -> list[tuple[bytes, bytes]]:
    """The headers every reply has: the media type, what the request-id, security and
    X-Frame-Options middleware add to a JSON response, and ``Vary`` (built once per settings)."""
    if _fixed:
        return _fixed
    headers = [
        (b"content-type", b"application/json"),
        (b"access-control-expose-headers", b"X-Request-ID"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        value = policy if isinstance(policy, str) else ",".join(policy)
        headers.append((b"referrer-policy", value.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(
            (b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode())
        )
    headers.append((b"x-frame-options", settings.X_FRAME_OPTIONS.encode()))
    headers.append((b"vary", b"Accept-Language"))
    _fixed[:] = headers
    return _fixed


# A reply's own headers as ASGI sends them, per distinct tuple: the few the endpoint answers
# with (Cache-Control; WWW-Authenticate, Retry-After), so the dict stays small.
_wire_headers: dict[tuple[tuple[str, str], ...], tuple[tuple[bytes, bytes], ...]] = {}


def _wire(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[bytes, bytes], ...]:
    try:
        return _wire_headers[headers]
    except KeyError:
        pass
    wire = tuple((name.lower().encode(), value.encode("latin-1")) for name, value in headers)
    if len(_wire_headers) >= 64:
        _wire_headers.clear()
    _wire_headers[headers] = wire
    return wire


def forget_settings(**_kwargs: object) -> None:
    """Drop what was worked out from settings (``setting_changed``; tests override them)."""
    _fixed.clear()
    _host_verdicts.clear()


setting_changed.connect(forget_settings, dispatch_uid="realtime.fastpath.forget_settings")
