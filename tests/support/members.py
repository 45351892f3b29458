"""Tenant members as the fixtures of ``tests/conftest.py`` create them."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.test import APIClient

from domains.tenants.models import Tenant, User
from domains.tenants.services import auth_token_issue
from realtime.identity import Role

PASSWORD = "correct horse battery"


@dataclass
class Member:
    tenant: Tenant
    user: User
    role: Role

    @property
    def username(self) -> str:
        return self.user.username

    def access_token(self) -> str:
        return auth_token_issue(
            tenant_code=self.tenant.code, username=self.user.username, password=PASSWORD
        ).access

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.access_token()}")
        return client


def member_of(tenant: Tenant, username: str, role: Role) -> Member:
    """A member of ``tenant`` with ``role``, created (or updated) with :data:`PASSWORD`."""
    from domains.tenants import repository

    user = repository.member_upsert(tenant.id, username=username, password=PASSWORD, role=role)
    return Member(tenant=tenant, user=user, role=role)
