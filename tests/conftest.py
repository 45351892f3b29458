"""Fixtures shared by every tier: two tenants with members, tokens and API clients.

Given/when/then: fixtures are the "given"; every tenant-scoped test also has a second tenant
(``beta``) at hand so cross-tenant access is always one line away.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from domains.tenants import repository
from domains.tenants.models import Tenant
from realtime.identity import Role
from tests.support.members import PASSWORD, Member


def _member(tenant: Tenant, username: str, role: Role) -> Member:
    user = repository.member_upsert(tenant.id, username=username, password=PASSWORD, role=role)
    return Member(tenant=tenant, user=user, role=role)


@pytest.fixture
def alpha(db: None) -> Tenant:
    return repository.tenant_upsert(code="alpha", name="Alpha Academy")


@pytest.fixture
def beta(db: None) -> Tenant:
    return repository.tenant_upsert(code="beta", name="Beta Academy")


@pytest.fixture
def alpha_staff(alpha: Tenant) -> Member:
    return _member(alpha, "alpha-staff", Role.STAFF)


@pytest.fixture
def alpha_student(alpha: Tenant) -> Member:
    return _member(alpha, "alpha-student", Role.STUDENT)


@pytest.fixture
def beta_staff(beta: Tenant) -> Member:
    return _member(beta, "beta-staff", Role.STAFF)


@pytest.fixture
def api() -> APIClient:
    return APIClient()
