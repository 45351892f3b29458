from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from domains.tenants.models import Tenant, TenantMembership, User


class MembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ("tenant",)


@admin.register(User)
class AcademyUserAdmin(UserAdmin):
    inlines = (MembershipInline,)
    list_display = ("username", "email", "is_active", "must_change_password")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "created_at")
    search_fields = ("code", "name")
