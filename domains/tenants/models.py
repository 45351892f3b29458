from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from realtime.identity import Role

ROLE_LABELS = {
    Role.ADMIN: _("Administrator"),
    Role.STAFF: _("Staff"),
    Role.TEACHER: _("Teacher"),
    Role.STUDENT: _("Student"),
    Role.PARENT: _("Parent"),
}


class User(AbstractUser):
    """The platform's user. One user may belong to several tenants (academies)."""

    # Set for accounts created with a shared initial password (the Excel import): the user must
    # choose their own at first login.
    must_change_password = models.BooleanField(default=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class Tenant(models.Model):
    """An academy. Every row and every Redis key of the platform is scoped by one."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.code


class TenantMembership(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=list(ROLE_LABELS.items()))
    # An academy admin switches a membership off instead of deleting it (records keep their
    # author); an inactive membership can neither log in nor refresh.
    is_active = models.BooleanField(default=True)
    # Put in every refresh token and compared at refresh: a password change or a
    # deactivation bumps it, and every refresh token issued before stops working
    # (docs/adr/0014-refresh-tokens-carry-a-membership-version.md).
    token_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="uniq_membership_tenant_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.tenant_id}:{self.role}"
