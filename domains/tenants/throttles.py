"""Throttles for login, refresh and password change (audit F12), counted in Redis.

Each endpoint has two: one per client address, one per (tenant, user). A counter is a fixed
window that opens at the first request: ``INCR`` on a key that expires with the window, in the
``throttle`` cache (Django's RedisCache on the project's Redis), so every ASGI process counts
together and the check is one atomic increment rather than DRF's read-modify-write history.
Rates are ``AUTH_THROTTLE_RATES`` (settings), read per request so tests can override them.

A refusal is ``429 throttled`` with ``Retry-After`` (the seconds until the window closes) and a
translated message. When Redis cannot be reached the request is let through: a login that
works without a brute-force brake beats no login at all, and the outage is logged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from django.conf import settings
from django.core.cache import caches
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from domains.tenants.auth import TenantTokenUser
from realtime.identity import TENANT_CLAIM
from realtime.keys import throttle_key

logger = logging.getLogger(__name__)

CACHE_ALIAS = "throttle"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Client input is hashed into keys: bounded length, no separators, nothing to inject.
_DIGEST_CHARS = 24


def rate_parse(rate: str) -> tuple[int, int]:
    """``"5/min"`` → (5, 60): requests per window of seconds, as DRF writes rates."""
    count, _sep, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[:1]]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]


class TooManyAttempts(exceptions.Throttled):
    default_detail = _("Too many attempts.")

    def __init__(self, wait: float | None = None) -> None:
        # DRF formats before translating, which no catalogue can match; translate the
        # pattern, then format.
        seconds = math.ceil(wait) if wait is not None else None
        detail = str(self.default_detail)
        if seconds is not None:
            pattern = ngettext(
                "Try again in {wait} second.", "Try again in {wait} seconds.", seconds
            )
            detail = f"{detail} {pattern.format(wait=seconds)}"
        super().__init__(None, detail=detail, code="throttled")
        self.wait = seconds


class WindowThrottle(BaseThrottle):
    """A fixed-window counter per ``key(request)``; subclasses say what they count by."""

    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def key(self, request: Request) -> str | None:
        """The counter's key, or None when this throttle does not apply to the request."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = settings.AUTH_THROTTLE_RATES.get(self.scope)
        key = self.key(request) if rate else None
        if rate is None or key is None:
            return True
        limit, window = rate_parse(rate)
        cache = caches[CACHE_ALIAS]
        now = time.time()
        try:
            # The first request of a window creates both keys; both expire with the window.
            cache.add(f"{key}:start", int(now), timeout=window)
            cache.add(key, 0, timeout=window)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr: a new window
                cache.set(key, 1, timeout=window)
                count = 1
            if count <= limit:
                return True
            started = cache.get(f"{key}:start")
        except RedisError:
            logger.warning("throttle %s not checked: Redis unavailable", self.scope)
            return True
        opened = float(started) if started is not None else now
        self._wait = max(1.0, opened + window - now)
        logger.info("throttled scope=%s", self.scope)
        return False

    def wait(self) -> float | None:
        return self._wait


class AddressThrottle(WindowThrottle):
    """Per client address (DRF's ``get_ident``: ``NUM_PROXIES`` decides whether
    ``X-Forwarded-For`` is trusted)."""

    def key(self, request: Request) -> str | None:
        return throttle_key(self.scope, ip=self.get_ident(request))


class LoginAddressThrottle(AddressThrottle):
    scope = "login_ip"


class LoginUserThrottle(WindowThrottle):
    """Per (tenant code, username) as the login body names them, before any lookup."""

    scope = "login_user"

    def key(self, request: Request) -> str | None:
        data = request.data
        if not isinstance(data, Mapping):
            return None
        tenant, username = data.get("tenant"), data.get("username")
        if not isinstance(tenant, str) or not isinstance(username, str):
            return None
        return throttle_key(self.scope, tenant=_digest(tenant), user=_digest(username))


class RefreshAddressThrottle(AddressThrottle):
    scope = "refresh_ip"


class RefreshUserThrottle(WindowThrottle):
    """Per (tenant, user) of a refresh token that verifies; a forged one cannot spend a
    victim's budget (it falls to the address throttle alone)."""

    scope = "refresh_user"

    def key(self, request: Request) -> str | None:
        data = request.data
        raw = data.get("refresh") if isinstance(data, Mapping) else None
        if not isinstance(raw, str) or len(raw) > 4096:
            return None
        try:
            token = RefreshToken(raw)  # type: ignore[arg-type]
            tenant_id, user_id = int(token[TENANT_CLAIM]), int(token["user_id"])
        except (TokenError, KeyError, TypeError, ValueError):
            return None
        return throttle_key(self.scope, tenant=str(tenant_id), user=str(user_id))


class PasswordAddressThrottle(AddressThrottle):
    scope = "password_ip"


class PasswordUserThrottle(WindowThrottle):
    """Per authenticated caller (tenant, user): guesses at the current password."""

    scope = "password_user"

    def key(self, request: Request) -> str | None:
        user = request.user
        if not isinstance(user, TenantTokenUser):
            return None
        caller = user.caller
        return throttle_key(self.scope, tenant=str(caller.tenant_id), user=str(caller.user_id))


class ThrottledApiMixin:
    """Views with these throttles answer their refusal in the project's words."""

    def throttled(self, request: Request, wait: float) -> NoReturn:
        raise TooManyAttempts(wait)
