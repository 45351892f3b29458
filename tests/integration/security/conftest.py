"""Fixtures of the security tests: counters reset, members of two tenants, tokens (the helpers
are in ``tests/support/security.py``).

Throttle, quota and connection counters live in Redis and outlive a test's database
rollback, so every test here starts from none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domains.tenants.models import Tenant
from realtime.identity import Role
from tests.support.members import Member
from tests.support.security import clear_counters, member


@pytest.fixture(autouse=True)
def fresh_counters() -> Iterator[None]:
    clear_counters()
    yield
    clear_counters()


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
