"""ORM access for tenants, users and memberships. The only module here that uses `.objects`."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import F

from domains.tenants.models import Tenant, TenantMembership, User
from realtime.identity import Role


def membership_for_login(*, tenant_code: str, username: str) -> TenantMembership | None:
    """The active user's active membership in the tenant, with user and tenant, in one query."""
    return (
        TenantMembership.objects.select_related("user", "tenant")
        .filter(
            tenant__code=tenant_code,
            user__username=username,
            user__is_active=True,
            is_active=True,
        )
        .first()
    )


@dataclass(frozen=True, slots=True)
class MembershipAtRefresh:
    role: Role
    must_change_password: bool
    token_version: int


def membership_at_refresh(tenant_id: int, *, user_id: int) -> MembershipAtRefresh | None:
    """What a refresh needs of an active membership: one SELECT on the (tenant, user) index."""
    row = (
        TenantMembership.objects.filter(
            tenant_id=tenant_id, user_id=user_id, user__is_active=True, is_active=True
        )
        .values_list("role", "user__must_change_password", "token_version")
        .first()
    )
    if row is None:
        return None
    return MembershipAtRefresh(Role(row[0]), bool(row[1]), int(row[2]))


def membership_of(tenant_id: int, *, user_id: int) -> TenantMembership | None:
    """The active membership with its user (for the password change), or None."""
    return (
        TenantMembership.objects.select_related("user")
        .filter(tenant_id=tenant_id, user_id=user_id, user__is_active=True, is_active=True)
        .first()
    )


def user_password_set(user: User, *, password: str) -> None:
    """Store a new password, clear the initial-password flag, and bump the token version of
    every membership of the user (the password is the user's, in every tenant)."""
    user.set_password(password)
    user.must_change_password = False
    with transaction.atomic():
        user.save(update_fields=["password", "must_change_password"])
        user_token_versions_bump(user_id=user.pk)


def user_token_versions_bump(*, user_id: int) -> None:
    """Bump the token version of every membership of a user (the password is per user)."""
    TenantMembership.objects.filter(user_id=user_id).update(token_version=F("token_version") + 1)


def membership_deactivate(tenant_id: int, *, user_id: int) -> bool:
    """Switch a membership off and bump its token version; False when there is none."""
    updated = TenantMembership.objects.filter(tenant_id=tenant_id, user_id=user_id).update(
        is_active=False, token_version=F("token_version") + 1
    )
    return updated > 0


def tenant_upsert(*, code: str, name: str) -> Tenant:
    tenant, _ = Tenant.objects.update_or_create(code=code, defaults={"name": name})
    return tenant


def member_upsert(tenant_id: int, *, username: str, password: str, role: Role) -> User:
    """Create or reset a user and its membership (demo data and operator scripts)."""
    user, _ = User.objects.update_or_create(
        username=username, defaults={"password": make_password(password), "is_active": True}
    )
    TenantMembership.objects.update_or_create(
        tenant_id=tenant_id, user=user, defaults={"role": role.value, "is_active": True}
    )
    return user
