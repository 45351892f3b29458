"""Membership roles and what each may see. Pure logic: no Django imports."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    TEACHER = "teacher"
    STUDENT = "student"
    PARENT = "parent"


# Roles that may watch every topic of their tenant (PROTOCOL.md §4); others only their own.
TENANT_WIDE_ROLES = frozenset({Role.ADMIN, Role.STAFF})


def sees_whole_tenant(role: str) -> bool:
    return role in TENANT_WIDE_ROLES
