"""The Django admin for operators. Changes that revoke tokens go through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from domains.tenants import services
from domains.tenants.models import Tenant, TenantMembership, User


class MembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ("tenant",)
    readonly_fields = ("token_version",)


class RevokingPasswordChangeForm(AdminPasswordChangeForm):
    """An operator setting a password refuses the user's earlier refresh tokens (ADR 0014)."""

    def save(self, commit: bool = True) -> Any:
        user = super().save(commit=commit)
        if commit:
            services.user_tokens_revoke(user_id=user.pk)
        return user


@admin.register(User)
class AcademyUserAdmin(UserAdmin):
    inlines = (MembershipInline,)
    list_display = ("username", "email", "is_active", "must_change_password")
    change_password_form = RevokingPasswordChangeForm

    def save_formset(
        self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool
    ) -> None:
        switched_off = [
            inline.instance
            for inline in formset.forms
            if isinstance(inline.instance, TenantMembership)
            and inline.instance.pk is not None
            and "is_active" in inline.changed_data
            and not inline.instance.is_active
        ]
        super().save_formset(request, form, formset, change)
        for membership in switched_off:
            services.membership_deactivate(membership.tenant_id, user_id=membership.user_id)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "created_at")
    search_fields = ("code", "name")
