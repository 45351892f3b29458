"""Who is calling and what they may see (PROTOCOL.md §4): the access token's claims as a caller.

The push core owns this because the contract defines it: the claims a token carries, the roles,
and the one visibility rule (:func:`sees_topic`: staff and admin see every topic of their
tenant, everyone else only their own). Pure logic, no Django or simplejwt imports, so the
WebSocket handshake, the progress endpoints and the HTTP API share it; verifying a token's
signature is :func:`realtime.auth.caller_from_access_token`. ``domains.tenants`` issues the
tokens with these claim names (docs/adr/0008-shared-kernel-in-domains-common.md).

The tenant always comes from a verified token, never from a request body or a client header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    TEACHER = "teacher"
    STUDENT = "student"
    PARENT = "parent"


# Roles that may watch every topic of their tenant (PROTOCOL.md §4); others only their own.
TENANT_WIDE_ROLES = frozenset({Role.ADMIN, Role.STAFF})

# Claim names inside the access token, besides simplejwt's own (`user_id`, `exp`, `jti`, ...).
TENANT_CLAIM = "tenant_id"
ROLE_CLAIM = "role"
# Set while the user still has the initial password an import gave it (ADR 0102).
PASSWORD_CHANGE_CLAIM = "pwd_change"  # noqa: S105 - a claim name, not a secret
# The membership's token version, checked at refresh only (ADR 0014).
TOKEN_VERSION_CLAIM = "token_version"  # noqa: S105 - a claim name, not a secret


def sees_whole_tenant(role: str) -> bool:
    return role in TENANT_WIDE_ROLES


class InvalidClaims(ValueError):
    """The token does not verify, or verifies but carries no usable tenant identity."""


@dataclass(frozen=True, slots=True)
class Caller:
    tenant_id: int
    user_id: int
    role: Role
    expires_at: int  # epoch seconds, the token's `exp`
    must_change_password: bool = False

    @property
    def sees_whole_tenant(self) -> bool:
        return sees_whole_tenant(self.role)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Caller:
        try:
            return cls(
                tenant_id=int(claims[TENANT_CLAIM]),
                user_id=int(claims["user_id"]),
                role=Role(claims[ROLE_CLAIM]),
                expires_at=int(claims["exp"]),
                must_change_password=bool(claims.get(PASSWORD_CHANGE_CLAIM, False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidClaims(str(exc)) from exc


def sees_topic(caller: Caller, *, owner_id: int | None) -> bool:
    """PROTOCOL.md §4: staff and admin see everything of their tenant, others only their own.

    The one visibility rule, for topics (``owner_id`` from Redis) and records (``created_by``)
    alike. The tenant is not checked here: every lookup is already scoped to the caller's.
    """
    return caller.sees_whole_tenant or (owner_id is not None and owner_id == caller.user_id)


def visible_owner(caller: Caller) -> int | None:
    """`sees_topic` as a query filter, for lists: the owner whose rows the caller may see, or
    ``None`` when the caller sees every row of the tenant."""
    return None if caller.sees_whole_tenant else caller.user_id
