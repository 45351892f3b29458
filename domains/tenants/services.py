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

from domains.common.errors import AuthenticationFailed, ValidationFailed
from domains.tenants import repository
from domains.tenants.models import TenantMembership
from realtime.identity import PASSWORD_CHANGE_CLAIM, ROLE_CLAIM, TENANT_CLAIM, Caller

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access: str
    refresh: str | None
    access_expires_at: datetime
    must_change_password: bool = False


def _issued(refresh: RefreshToken, *, include_refresh: bool) -> IssuedTokens:
    access = refresh.access_token  # copies tenant and role claims from the refresh token
    return IssuedTokens(
        access=str(access),
        refresh=str(refresh) if include_refresh else None,
        access_expires_at=datetime.fromtimestamp(int(access["exp"]), tz=UTC),
        must_change_password=bool(access.get(PASSWORD_CHANGE_CLAIM, False)),
    )


def _tokens_for(membership: TenantMembership) -> IssuedTokens:
    refresh = RefreshToken.for_user(membership.user)
    refresh[TENANT_CLAIM] = membership.tenant_id
    refresh[ROLE_CLAIM] = membership.role
    if membership.user.must_change_password:
        refresh[PASSWORD_CHANGE_CLAIM] = True
    return _issued(refresh, include_refresh=True)


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
    """A new access token, if the membership still exists; the role is read afresh."""
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]
        tenant_id = int(token[TENANT_CLAIM])
        user_id = int(token["user_id"])
    except (TokenError, KeyError, TypeError, ValueError) as exc:
        raise AuthenticationFailed() from exc
    current = repository.membership_role(tenant_id, user_id=user_id)
    if current is None:
        raise AuthenticationFailed()
    role, must_change_password = current
    token[ROLE_CLAIM] = role.value
    if must_change_password:
        token[PASSWORD_CHANGE_CLAIM] = True
    elif PASSWORD_CHANGE_CLAIM in token:
        del token[PASSWORD_CHANGE_CLAIM]
    return _issued(token, include_refresh=False)


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
    return _tokens_for(membership)
