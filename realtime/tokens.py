"""Access-token verification without Django: the check behind every caller (PROTOCOL.md §4).

:class:`AccessTokenVerifier` does what ``rest_framework_simplejwt.tokens.AccessToken(raw)``
does for this project's settings (PyJWT ``decode`` with the one algorithm and key, then simplejwt's
own checks: an ``exp`` claim that has not passed, a ``jti``, ``token_type == "access"``), and
returns the :class:`~realtime.identity.Caller`. ``realtime.auth.caller_from_access_token``
builds it from ``settings.SIMPLE_JWT``; this module imports no Django, so a process without
Django (bench/http's raw ASGI baseline) runs the very same check.

Verified tokens are remembered. A client that polls the progress endpoint sends the same token
every 1 to 3 s for the token's whole life, and the signature check is most of a progress
request's CPU (PyJWT checks the alphabet of each segment one character at a time). The result
of verifying the same bytes with the same key cannot change, except through time: a remembered
caller is handed out only while its ``exp`` is still ahead, the same test simplejwt makes (with
the same leeway), so an expired token is refused at the same instant either way. Only successes
are remembered; a refused token is checked again each time. The memory is bounded (it is
emptied when full) and per verifier, i.e. per signing key and settings.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from realtime.identity import Caller, InvalidClaims

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - simplejwt's token type name, not a secret
TOKEN_TYPE_CLAIM = "token_type"  # noqa: S105 - a claim name
JTI_CLAIM = "jti"
# Distinct tokens remembered per verifier: a process serves a few thousand users at most.
CACHE_SIZE = 16384


class AccessTokenVerifier:
    """Verifies access tokens signed with one key (simplejwt's semantics, see the module doc)."""

    __slots__ = ("_algorithm", "_cache", "_cache_size", "_key", "_leeway")

    def __init__(
        self,
        key: str,
        *,
        algorithm: str = "HS256",
        leeway: float = 0.0,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._key = key
        self._algorithm = algorithm
        self._leeway = leeway
        self._cache: dict[str, Caller] = {}
        self._cache_size = cache_size

    def caller(self, raw: str) -> Caller:
        """The caller of a valid access token; :class:`InvalidClaims` for anything else."""
        known = self._cache.get(raw)
        if known is not None:
            if known.expires_at > time.time() - self._leeway:
                return known
            del self._cache[raw]
            raise InvalidClaims("Token 'exp' claim has expired")
        caller = Caller.from_claims(self.claims(raw))
        if self._cache_size > 0:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[raw] = caller
        return caller

    def claims(self, raw: str) -> dict[str, Any]:
        """The verified payload (signature, algorithm, expiry, id, type), never remembered."""
        try:
            payload: dict[str, Any] = jwt.decode(
                raw,
                self._key,
                algorithms=[self._algorithm],
                leeway=self._leeway,
                options={"verify_aud": False, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidClaims("Token is expired") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidClaims("Token is invalid") from exc
        # simplejwt requires an expiry (RFC 7519 makes it optional) and checks it itself.
        try:
            expires_at = float(payload["exp"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidClaims("Token has no 'exp' claim") from exc
        if expires_at <= time.time() - self._leeway:
            raise InvalidClaims("Token 'exp' claim has expired")
        if JTI_CLAIM not in payload:
            raise InvalidClaims("Token has no id")
        if payload.get(TOKEN_TYPE_CLAIM) != ACCESS_TOKEN_TYPE:
            raise InvalidClaims("Token has wrong type")
        return payload
