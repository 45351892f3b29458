"""ORM access for tenants, users and memberships. The only module here that uses `.objects`."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password

from domains.tenants.models import Tenant, TenantMembership, User
from realtime.identity import Role


def membership_for_login(*, tenant_code: str, username: str) -> TenantMembership | None:
    """The active user's membership in the tenant, with user and tenant, in one query."""
    return (
        TenantMembership.objects.select_related("user", "tenant")
        .filter(tenant__code=tenant_code, user__username=username, user__is_active=True)
        .first()
    )


def membership_role(tenant_id: int, *, user_id: int) -> tuple[Role, bool] | None:
    """The current role of an active user in a tenant and its must-change-password flag."""
    row = (
        TenantMembership.objects.filter(tenant_id=tenant_id, user_id=user_id, user__is_active=True)
        .values_list("role", "user__must_change_password")
        .first()
    )
    return (Role(row[0]), bool(row[1])) if row else None


def membership_of(tenant_id: int, *, user_id: int) -> TenantMembership | None:
    """The membership with its user (for the password change), or None."""
    return (
        TenantMembership.objects.select_related("user")
        .filter(tenant_id=tenant_id, user_id=user_id, user__is_active=True)
        .first()
    )


def user_password_set(user: User, *, password: str) -> None:
    """Store a new password and clear the initial-password flag."""
    user.set_password(password)
    user.must_change_password = False
    user.save(update_fields=["password", "must_change_password"])


def tenant_upsert(*, code: str, name: str) -> Tenant:
    tenant, _ = Tenant.objects.update_or_create(code=code, defaults={"name": name})
    return tenant


def member_upsert(tenant_id: int, *, username: str, password: str, role: Role) -> User:
    """Create or reset a user and its membership (demo data and operator scripts)."""
    user, _ = User.objects.update_or_create(
        username=username, defaults={"password": make_password(password), "is_active": True}
    )
    TenantMembership.objects.update_or_create(
        tenant_id=tenant_id, user=user, defaults={"role": role.value}
    )
    return user
