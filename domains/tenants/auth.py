"""Stateless authentication: the access token alone says who calls and for which tenant.

No database query is made to authenticate a request or to resolve its tenant. The caller, its
claims and the token verification the WebSocket handshake uses belong to the push core
(``realtime.identity``, ``realtime.auth``); this module holds DRF's side of the same rule.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.tokens import Token

from realtime.identity import Caller, InvalidClaims


class TenantTokenUser(TokenUser):
    """``request.user`` for token-authenticated requests, built from the token's claims."""

    @cached_property
    def caller(self) -> Caller:
        return Caller.from_claims(self.token.payload)


class StatelessTenantJWTAuthentication(JWTStatelessUserAuthentication):
    # simplejwt types this as the user model; a stateless token user is the point here.
    def get_user(self, validated_token: Token) -> TenantTokenUser:  # type: ignore[override]
        user = TenantTokenUser(validated_token)
        try:
            user.caller  # noqa: B018 - validate the tenant claims once, at authentication
        except InvalidClaims as exc:
            raise exceptions.AuthenticationFailed(
                _("The token carries no tenant."), code="token_not_valid"
            ) from exc
        return user


class IsTenantMember(permissions.BasePermission):
    """Default permission: an access token issued for a tenant membership.

    A token of a user who still has an initial password (``must_change_password``) opens only
    the views that set ``allowed_before_password_change = True``: reading who one is and
    changing the password. Checked from the token's claim, so still without SQL.
    """

    message = _("Change your initial password first.")
    code = "password_change_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not isinstance(user, TenantTokenUser):
            return False
        return not user.caller.must_change_password or getattr(
            view, "allowed_before_password_change", False
        )


def caller_of(request: Request) -> Caller:
    """The verified caller of a request; views pass ``caller.tenant_id`` first to services."""
    user = request.user
    if not isinstance(user, TenantTokenUser):
        raise exceptions.NotAuthenticated()
    return user.caller
