"""Fixtures of the security tests: counters reset, members of two tenants, tokens.

Throttle, quota and connection counters live in Redis and outlive a test's database
rollback, so every test here starts from none.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from domains.tenants import repository
from domains.tenants.models import Tenant
from realtime.clients import sync_redis
from realtime.identity import Role
from tests.conftest import PASSWORD, Member

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
PASSWORD_URL = "/api/v1/auth/password/"
JOBS_URL = "/api/v1/jobs/"


def clear_counters() -> None:
    """Throttle windows, daily messaging budgets and connection sets (tenant ids repeat across
    runs, since every run gets a new test database)."""
    client = sync_redis()
    prefix = settings.REALTIME_KEY_PREFIX
    for pattern in (
        f"{prefix}cache:*:throttle:*",
        f"{prefix}tenant:*:messaging:recipients:*",
        f"{prefix}tenant:*:user:*:connections",
    ):
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def fresh_counters() -> Iterator[None]:
    clear_counters()
    yield
    clear_counters()


def member(tenant: Tenant, username: str, role: Role) -> Member:
    user = repository.member_upsert(tenant.id, username=username, password=PASSWORD, role=role)
    return Member(tenant=tenant, user=user, role=role)


@pytest.fixture
def alpha_teacher(alpha: Tenant) -> Member:
    return member(alpha, "alpha-teacher", Role.TEACHER)


@pytest.fixture
def beta_teacher(beta: Tenant) -> Member:
    return member(beta, "beta-teacher", Role.TEACHER)


@pytest.fixture
def shared(alpha: Tenant, beta: Tenant) -> tuple[Member, Member]:
    """One user ("shared-user") who is a student of both alpha and beta."""
    in_alpha = member(alpha, "shared-user", Role.STUDENT)
    in_beta = member(beta, "shared-user", Role.STUDENT)
    return in_alpha, in_beta


def login(
    api: APIClient, tenant: str, username: str, password: str = PASSWORD, **extra: str
) -> Any:
    return api.post(
        TOKEN_URL,
        {"tenant": tenant, "username": username, "password": password},
        format="json",
        **extra,
    )


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def signed_access(
    *, tenant_id: int, user_id: int, role: str = "student", pwd_change: bool = False
) -> str:
    """An access token as the token endpoint signs it, without a database row."""
    token = AccessToken()
    token["user_id"] = user_id
    token["tenant_id"] = tenant_id
    token["role"] = role
    if pwd_change:
        token["pwd_change"] = True
    token.set_exp(lifetime=timedelta(seconds=300))
    return str(token)
