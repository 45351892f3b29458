"""Access tokens and tenant ids for tests that need no database rows."""

from __future__ import annotations

import datetime

from rest_framework_simplejwt.tokens import AccessToken

ALPHA, BETA = 101, 202  # tenant ids: the realtime tests need no database rows


def make_token(
    *, tenant_id: int = ALPHA, user_id: int = 7, role: str = "staff", lifetime: float = 300
) -> str:
    """A signed access token as the token endpoint issues it, without touching the database."""
    token = AccessToken()
    token["user_id"] = user_id
    token["tenant_id"] = tenant_id
    token["role"] = role
    token.set_exp(lifetime=datetime.timedelta(seconds=lifetime))
    return str(token)
