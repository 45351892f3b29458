"""Students and parents of an academy (tenant).

A student is identified inside a tenant by (name, parent_phone): that is how academies tell
students apart in their spreadsheets, and what the Excel import matches on. Students are
soft-deleted (``deleted_at``) so a re-import can restore them with their history and account.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from domains.students import rows
from domains.tenants.models import Tenant


class SchoolType(models.TextChoices):
    MIDDLE = rows.SCHOOL_MIDDLE, _("Middle school")
    HIGH = rows.SCHOOL_HIGH, _("High school")


class Gender(models.TextChoices):
    MALE = rows.GENDER_MALE, _("Male")
    FEMALE = rows.GENDER_FEMALE, _("Female")


# Partial indexes on the import's match key; created by migration 0002 (CONCURRENTLY). Their
# predicates are literal so the planner can prove a query implies them (ADR 0101).
ACTIVE_KEY_CONSTRAINT = "students_active_key_uniq"
DELETED_KEY_INDEX = "students_deleted_key_idx"
PS_NUMBER_CONSTRAINT = "students_tenant_ps_number_uniq"
PARENT_PHONE_CONSTRAINT = "students_parent_tenant_phone_uniq"


class Student(models.Model):
    # No index of its own: (tenant, ps_number) leads with the tenant and serves tenant-wide
    # scans; a third index on the column would only cost writes and, with ~20k students per
    # tenant, lure the planner away from the partial key indexes (ADR 0101).
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="students", db_index=False
    )
    name = models.CharField(_("name"), max_length=rows.MAX_LENGTH["name"])
    # Digits only (rows.normalize_phone); the parent's phone is part of the identity.
    parent_phone = models.CharField(_("parent phone"), max_length=rows.MAX_LENGTH["parent_phone"])
    # Nullable as in the seed schema, which other services read: NULL is "no phone of its own".
    phone = models.CharField(  # noqa: DJ001
        _("phone"), max_length=rows.MAX_LENGTH["phone"], null=True, blank=True
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="student_profiles",
    )
    # The academy's student number; issued from StudentNumberCounter, also the login name's tail.
    ps_number = models.CharField(_("student number"), max_length=20)
    school_type = models.CharField(
        _("school type"), max_length=8, choices=SchoolType.choices, blank=True
    )
    high_school = models.CharField(
        _("high school"), max_length=rows.MAX_LENGTH["high_school"], blank=True
    )
    middle_school = models.CharField(
        _("middle school"), max_length=rows.MAX_LENGTH["middle_school"], blank=True
    )
    high_school_class = models.CharField(
        _("high school class"), max_length=rows.MAX_LENGTH["high_school_class"], blank=True
    )
    major = models.CharField(_("major"), max_length=rows.MAX_LENGTH["major"], blank=True)
    # 1-3 within school_type (중1 = middle/1, 고3 = high/3).
    grade = models.PositiveSmallIntegerField(_("grade"), null=True, blank=True)
    memo = models.TextField(_("memo"), blank=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Unique among active students only: a deleted student may be re-created or restored.
            models.UniqueConstraint(
                fields=["tenant", "name", "parent_phone"],
                condition=models.Q(deleted_at__isnull=True),
                name=ACTIVE_KEY_CONSTRAINT,
            ),
            models.UniqueConstraint(fields=["tenant", "ps_number"], name=PS_NUMBER_CONSTRAINT),
            models.CheckConstraint(
                condition=models.Q(grade__isnull=True) | models.Q(grade__gte=1, grade__lte=3),
                name="students_grade_1_to_3",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "name", "parent_phone"],
                condition=models.Q(deleted_at__isnull=False),
                name=DELETED_KEY_INDEX,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ps_number})"


class Parent(models.Model):
    """A student's guardian; linked to students of the same tenant by ``phone``."""

    # Indexed through (tenant, phone).
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="parents", db_index=False
    )
    phone = models.CharField(_("phone"), max_length=rows.MAX_LENGTH["parent_phone"])
    name = models.CharField(_("name"), max_length=rows.MAX_LENGTH["parent_name"], blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="parent_profiles",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "phone"], name=PARENT_PHONE_CONSTRAINT),
        ]

    def __str__(self) -> str:
        return self.phone


class StudentNumberCounter(models.Model):
    """The last student number issued in a tenant; reserved in blocks (ADR 0103)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True)
    last_value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.last_value}"
