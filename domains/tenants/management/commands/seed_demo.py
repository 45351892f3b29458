"""Seed the demo tenants and users of PROTOCOL.md §5a. Safe to run again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from domains.tenants import repository
from realtime.identity import Role

DEMO_PASSWORD = "demo1234"  # noqa: S105 - documented demo credential, dev only
DEMO_TENANTS = {"alpha": "Alpha Academy", "beta": "Beta Academy"}
# The teacher sees its own items only: the dashboard's per-item view (/demo/dashboard/).
DEMO_ROLES = (Role.ADMIN, Role.STAFF, Role.TEACHER, Role.STUDENT)


class Command(BaseCommand):
    help = (
        "Create tenants alpha and beta with <tenant>-admin/-staff/-teacher/-student "
        "(password demo1234)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            for code, name in DEMO_TENANTS.items():
                tenant = repository.tenant_upsert(code=code, name=name)
                for role in DEMO_ROLES:
                    repository.member_upsert(
                        tenant.id,
                        username=f"{code}-{role.value}",
                        password=DEMO_PASSWORD,
                        role=role,
                    )
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for code in DEMO_TENANTS:
            users = ", ".join(f"{code}-{role.value}" for role in DEMO_ROLES)
            self.stdout.write(f"  tenant {code}: {users} (password {DEMO_PASSWORD})")
