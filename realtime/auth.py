"""WebSocket handshake authentication: who connects, decided before anything is accepted.

The access token comes from the subprotocol pair ``realtime.v1``, ``bearer.<token>`` (browsers
cannot set headers on a WebSocket) or from ``?token=``. It is verified statelessly (no SQL)
with the same code as the HTTP API (:func:`caller_from_access_token`). The Origin header,
when present, must be an allowed origin. The outcome is put in the scope for the consumer,
which accepts and closes at once with the protocol's close code when it failed, so the client
learns why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from realtime.identity import Caller, InvalidClaims
from realtime.protocol import BEARER_PREFIX, CLOSE_ORIGIN, CLOSE_UNAUTHENTICATED, SUBPROTOCOL

logger = logging.getLogger(__name__)

SCOPE_KEY = "realtime.auth"


def caller_from_access_token(raw: str) -> Caller:
    """Verify an access token (signature, expiry, type) and read its caller. No SQL.

    Raises :class:`InvalidClaims` for any token that does not authenticate a tenant member.
    """
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        raise InvalidClaims(str(exc)) from exc
    return Caller.from_claims(token.payload)


@dataclass(frozen=True, slots=True)
class HandshakeAuth:
    caller: Caller | None
    close_code: int | None
    subprotocol: str | None  # what to answer in accept(): realtime.v1 when the client offered it


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def token_from_scope(scope: dict[str, Any]) -> str | None:
    for protocol in scope.get("subprotocols") or ():
        if protocol.startswith(BEARER_PREFIX):
            return str(protocol[len(BEARER_PREFIX) :])
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    tokens = query.get("token")
    return tokens[0] if tokens else None


def origin_allowed(origin: str | None) -> bool:
    if origin is None:
        return bool(settings.REALTIME_ALLOW_MISSING_ORIGIN)
    return origin in settings.REALTIME_ALLOWED_ORIGINS


def authenticate_handshake(scope: dict[str, Any]) -> HandshakeAuth:
    offered = scope.get("subprotocols") or ()
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    origin = _header(scope, b"origin")
    if not origin_allowed(origin):
        logger.info("websocket refused: origin %r not allowed", origin)
        return HandshakeAuth(None, CLOSE_ORIGIN, subprotocol)
    token = token_from_scope(scope)
    if not token:
        return HandshakeAuth(None, CLOSE_UNAUTHENTICATED, subprotocol)
    try:
        caller = caller_from_access_token(token)
    except InvalidClaims as exc:
        logger.info("websocket refused: %s", exc)
        return HandshakeAuth(None, CLOSE_UNAUTHENTICATED, subprotocol)
    return HandshakeAuth(caller, None, subprotocol)


class TokenAuthMiddleware:
    """ASGI middleware putting a :class:`HandshakeAuth` into every WebSocket scope."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            scope = {**scope, SCOPE_KEY: authenticate_handshake(scope)}
        return await self.app(scope, receive, send)
