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
from django.core.signals import setting_changed

from realtime import connections, metrics
from realtime.identity import Caller, InvalidClaims
from realtime.protocol import (
    BEARER_PREFIX,
    CLOSE_ORIGIN,
    CLOSE_POLICY,
    CLOSE_UNAUTHENTICATED,
    SUBPROTOCOL,
)
from realtime.tokens import AccessTokenVerifier

logger = logging.getLogger(__name__)

SCOPE_KEY = "realtime.auth"
# The close reason of a handshake over the per-user connection cap (PROTOCOL.md §4).
REASON_TOO_MANY_CONNECTIONS = "too_many_connections"


def caller_from_access_token(raw: str) -> Caller:
    """Verify an access token (signature, expiry, type) and read its caller. No SQL.

    Raises :class:`InvalidClaims` for any token that does not authenticate a tenant member.
    The check is simplejwt's ``AccessToken(raw)`` for ``settings.SIMPLE_JWT``, done by
    :mod:`realtime.tokens` (no Django; verified tokens remembered until they expire).
    """
    verifier = _current_verifier
    if verifier is None:
        verifier = _remember_verifier()
    return verifier.caller(raw)


def _jwt_settings() -> tuple[str, str, float]:
    """(key, algorithm, leeway) as simplejwt reads them; overridden settings are honoured."""
    options = settings.SIMPLE_JWT
    leeway = options.get("LEEWAY", 0)
    seconds = leeway.total_seconds() if hasattr(leeway, "total_seconds") else float(leeway)
    algorithm = str(options.get("ALGORITHM", "HS256"))
    # simplejwt verifies HMAC tokens with the signing key, others with the verifying key.
    key = options["SIGNING_KEY"] if algorithm.startswith("HS") else options["VERIFYING_KEY"]
    return str(key), algorithm, seconds


_verifiers: dict[tuple[str, str, float], AccessTokenVerifier] = {}


def _verifier(options: tuple[str, str, float]) -> AccessTokenVerifier:
    verifier = _verifiers.get(options)
    if verifier is None:
        key, algorithm, leeway = options
        verifier = _verifiers[options] = AccessTokenVerifier(
            key, algorithm=algorithm, leeway=leeway
        )
    return verifier


# The verifier for the current settings, so a request reads no setting; forgotten when a
# setting changes (``setting_changed``: the tests' ``override_settings``).
_current_verifier: AccessTokenVerifier | None = None


def _remember_verifier() -> AccessTokenVerifier:
    global _current_verifier
    _current_verifier = _verifier(_jwt_settings())
    return _current_verifier


def forget_settings(**_kwargs: object) -> None:
    global _current_verifier
    _current_verifier = None


setting_changed.connect(forget_settings, dispatch_uid="realtime.auth.forget_settings")


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
    """ASGI middleware putting a :class:`HandshakeAuth` into every WebSocket scope.

    It also holds the caller's connection slot (``realtime.connections``) for as long as the
    connection's application runs, and gives it back however that ends (a close, a crash);
    a user at ``REALTIME_MAX_CONNECTIONS_PER_USER`` is accepted and closed at once with 4008
    and the reason ``too_many_connections``, before any consumer exists.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        metrics.connection_opened()
        try:
            return await self._serve(scope, receive, send)
        finally:
            metrics.connection_ended()

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        auth = authenticate_handshake(scope)
        slot = None
        if auth.caller is not None:
            slot = await connections.acquire(auth.caller.tenant_id, auth.caller.user_id)
            if slot is None:
                await refuse(receive, send, auth.subprotocol, REASON_TOO_MANY_CONNECTIONS)
                metrics.connection_closed(CLOSE_POLICY)
                return None
        try:
            return await self.app({**scope, SCOPE_KEY: auth}, receive, send)
        finally:
            if slot is not None:
                await connections.release(slot)


async def refuse(receive: Any, send: Any, subprotocol: str | None, reason: str) -> None:
    """Accept, then close with 4008 and a reason (a refused upgrade would only show 1006)."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    await send({"type": "websocket.close", "code": CLOSE_POLICY, "reason": reason})
