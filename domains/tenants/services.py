"""Issuing and refreshing tokens for tenant members."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from domains.common.errors import AuthenticationFailed, NotFound, ValidationFailed
from domains.tenants import repository
from domains.tenants.models import TenantMembership
from realtime.identity import (
    PASSWORD_CHANGE_CLAIM,
    ROLE_CLAIM,
    TENANT_CLAIM,
    TOKEN_VERSION_CLAIM,
    Caller,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access: str
    refresh: str
    access_expires_at: datetime
    must_change_password: bool = False


def _issued(refresh: RefreshToken) -> IssuedTokens:
    access = refresh.access_token  # copies tenant and role claims from the refresh token
    return IssuedTokens(
        access=str(access),
        refresh=str(refresh),
        access_expires_at=datetime.fromtimestamp(int(access["exp"]), tz=UTC),
        must_change_password=bool(access.get(PASSWORD_CHANGE_CLAIM, False)),
    )


def _tokens_for(membership: TenantMembership) -> IssuedTokens:
    refresh = RefreshToken.for_user(membership.user)
    refresh[TENANT_CLAIM] = membership.tenant_id
    refresh[ROLE_CLAIM] = membership.role
    refresh[TOKEN_VERSION_CLAIM] = membership.token_version
    if membership.user.must_change_password:
        refresh[PASSWORD_CHANGE_CLAIM] = True
    return _issued(refresh)


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

    logger.info(
        "token issued user=%s tenant=%s role=%s must_change_password=%s",
        membership.user_id,
        membership.tenant_id,
        membership.role,
        membership.user.must_change_password,
    )
    return _tokens_for(membership)


def auth_token_refresh(*, refresh: str) -> IssuedTokens:
    """A new token pair if the membership is still active and the token still current.

    One SELECT (ADR 0014): the role and the initial-password flag are read afresh, and the
    token's version must equal the membership's, which a password change or a deactivation
    bumps, so every refresh token issued before either is refused. The answer carries a new
    refresh token (rotation) with the current version and a fresh lifetime.
    """
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]
        tenant_id = int(token[TENANT_CLAIM])
        user_id = int(token["user_id"])
        # Tokens issued before versions existed carry none: they are version 0.
        version = int(token.get(TOKEN_VERSION_CLAIM, 0))
    except (TokenError, KeyError, TypeError, ValueError) as exc:
        raise AuthenticationFailed() from exc
    current = repository.membership_at_refresh(tenant_id, user_id=user_id)
    if current is None:
        logger.info("refresh refused: no active membership user=%s tenant=%s", user_id, tenant_id)
        raise AuthenticationFailed()
    if version != current.token_version:
        logger.info("refresh refused: revoked token user=%s tenant=%s", user_id, tenant_id)
        raise AuthenticationFailed()
    rotated = RefreshToken()  # a new jti and a fresh lifetime; no user row is loaded
    rotated["user_id"] = str(user_id)  # as RefreshToken.for_user writes it
    rotated[TENANT_CLAIM] = tenant_id
    rotated[ROLE_CLAIM] = current.role.value
    rotated[TOKEN_VERSION_CLAIM] = current.token_version
    if current.must_change_password:
        rotated[PASSWORD_CHANGE_CLAIM] = True
    return _issued(rotated)


def membership_deactivate(tenant_id: int, *, user_id: int) -> None:
    """Switch a membership off: no login, and every refresh token of it stops working.

    Access tokens already issued stay valid until they expire (at most
    ``ACCESS_TOKEN_LIFETIME``; ADR 0014).
    """
    if not repository.membership_deactivate(tenant_id, user_id=user_id):
        raise NotFound()
    logger.info("membership deactivated user=%s tenant=%s", user_id, tenant_id)


def user_tokens_revoke(*, user_id: int) -> None:
    """Refuse every refresh token a user holds, in every tenant (a password set elsewhere,
    e.g. by an operator in the Django admin)."""
    repository.user_token_versions_bump(user_id=user_id)
    logger.info("refresh tokens revoked user=%s", user_id)


def auth_password_change(
    caller: Caller, *, current_password: str, new_password: str
) -> IssuedTokens:
    """Replace the caller's password (an initial one included) and issue fresh tokens.

    The new tokens no longer carry the initial-password claim, so the caller can go on at once.
    """
    membership = repository.membership_of(caller.tenant_id, user_id=caller.user_id)
    if membership is None:
        raise AuthenticationFailed()
    user = membership.user
    if not user.check_password(current_password):
        raise ValidationFailed(
            fields={"current_password": [_("The current password is not correct.")]}
        )
    if new_password == current_password:
        raise ValidationFailed(
            fields={"new_password": [_("The new password must differ from the current one.")]}
        )
    try:
        validate_password(new_password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(fields={"new_password": list(exc.messages)}) from exc
    repository.user_password_set(user, password=new_password)
    logger.info("password changed user=%s tenant=%s", caller.user_id, caller.tenant_id)
    # Re-read: the change bumped the token version, which the new tokens must carry.
    membership = repository.membership_of(caller.tenant_id, user_id=caller.user_id)
    if membership is None:
        raise AuthenticationFailed()
    return _tokens_for(membership)
