"""Who is calling: the verified identity every view, consumer and service works with.

Pure logic (no Django imports) so the WebSocket handshake and the HTTP views share it. The
tenant always comes from a verified token, never from a request body or a client header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domains.tenants.roles import Role, sees_whole_tenant

# Claim names inside the access token, besides simplejwt's own (`user_id`, `exp`, `jti`, ...).
TENANT_CLAIM = "tenant_id"
ROLE_CLAIM = "role"
# Set while the user still has the initial password an import gave it (ADR 0102).
PASSWORD_CHANGE_CLAIM = "pwd_change"  # noqa: S105 - a claim name, not a secret


class InvalidClaims(ValueError):
    """The token verified but does not carry a usable tenant identity."""


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
