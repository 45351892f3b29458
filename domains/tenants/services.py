"""Issuing and refreshing tokens for tenant members."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.hashers import make_password
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from domains.tenants import repository
from domains.tenants.caller import ROLE_CLAIM, TENANT_CLAIM
from domains.tenants.roles import Role
from project.api.errors import AuthenticationFailed

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access: str
    refresh: str | None
    access_expires_at: datetime


def _issued(refresh: RefreshToken, *, include_refresh: bool) -> IssuedTokens:
    access = refresh.access_token  # copies tenant and role claims from the refresh token
    return IssuedTokens(
        access=str(access),
        refresh=str(refresh) if include_refresh else None,
        access_expires_at=datetime.fromtimestamp(int(access["exp"]), tz=UTC),
    )


def auth_token_issue(*, tenant_code: str, username: str, password: str) -> IssuedTokens:
    """Tokens for a member of ``tenant_code``; one failure answer for every failure cause."""
    membership = repository.membership_for_login(tenant_code=tenant_code, username=username)
    if membership is None:
        # Hash anyway, so a missing user or tenant costs the same time as a wrong password.
        make_password(password)
        logger.info("token refused: no membership (tenant=%s)", tenant_code)
        raise AuthenticationFailed()
    if not membership.user.check_password(password):
        logger.info("token refused: bad password (tenant=%s)", tenant_code)
        raise AuthenticationFailed()

    refresh = RefreshToken.for_user(membership.user)
    refresh[TENANT_CLAIM] = membership.tenant_id
    refresh[ROLE_CLAIM] = membership.role
    logger.info(
        "token issued user=%s tenant=%s role=%s",
        membership.user_id,
        membership.tenant_id,
        membership.role,
    )
    return _issued(refresh, include_refresh=True)


def auth_token_refresh(*, refresh: str) -> IssuedTokens:
    """A new access token, if the membership still exists; the role is read afresh."""
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]
        tenant_id = int(token[TENANT_CLAIM])
        user_id = int(token["user_id"])
    except (TokenError, KeyError, TypeError, ValueError) as exc:
        raise AuthenticationFailed() from exc
    role: Role | None = repository.membership_role(tenant_id, user_id=user_id)
    if role is None:
        raise AuthenticationFailed()
    token[ROLE_CLAIM] = role.value
    return _issued(token, include_refresh=False)
