"""Database access for students: the only module here with `.objects` and SQL.

Every function takes ``tenant_id`` first and every statement filters by it. The import's
statements are set-based: one lookup per block of keys, and per chunk one INSERT per table and
one UPDATE per kind of change, whatever the number of rows (ADR 0101).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, IntegrityError, connection

from domains.students.models import Parent, Student, StudentNumberCounter
from domains.students.plan import (
    UPDATABLE_FIELDS,
    Action,
    ExistingStudent,
    PlannedRow,
    username_for,
)
from domains.tenants.models import Tenant, TenantMembership, User
from realtime.identity import Role

logger = logging.getLogger(__name__)

# Keys per lookup statement: bounds the statement's size (two text arrays), not its cost, which
# grows with the number of keys only (bench/excel/lookup_methods.py, ADR 0101).
LOOKUP_BLOCK = 5_000

# First key of the two-int advisory lock: a namespace for "student import of tenant <n>".
_IMPORT_LOCK_NAMESPACE = 0x5354_494D
_LOCK_POLL_SECONDS = 0.1

_STUDENT_TABLE = Student._meta.db_table
_COUNTER_TABLE = StudentNumberCounter._meta.db_table
_MATCH_FIELDS = ("id", "name", "parent_phone", "user_id", "ps_number", "deleted_at")
_MATCH_COLUMNS = ", ".join(f"s.{name}" for name in (*_MATCH_FIELDS, *UPDATABLE_FIELDS))
_MATCH_OUTPUT = ", ".join(f"m.{name}" for name in (*_MATCH_FIELDS, *UPDATABLE_FIELDS))
# Per key, one probe of each partial index: the active student, and the latest soft-deleted one
# (the one a restore brings back). LATERAL … LIMIT keeps the planner from turning this into a
# hash join over all the tenant's students, so the cost follows the file, not the tenant, and
# the predicates are literal so the planner can prove each branch implies its index's WHERE.
MATCH_SQL = f"""
SELECT {_MATCH_OUTPUT} FROM unnest(%s::text[], %s::text[]) AS k(name, parent_phone)
CROSS JOIN LATERAL (
    (SELECT {_MATCH_COLUMNS} FROM {_STUDENT_TABLE} s
      WHERE s.tenant_id = %s AND s.name = k.name AND s.parent_phone = k.parent_phone
        AND s.deleted_at IS NULL
      LIMIT 1)
    UNION ALL
    (SELECT {_MATCH_COLUMNS} FROM {_STUDENT_TABLE} s
      WHERE s.tenant_id = %s AND s.name = k.name AND s.parent_phone = k.parent_phone
        AND s.deleted_at IS NOT NULL
      ORDER BY s.deleted_at DESC, s.id DESC
      LIMIT 1)
) AS m
"""  # noqa: S608 - table and column names are constants, values are parameters


class ImportLockBusy(Exception):
    """Another import of the same tenant holds the lock."""


class StudentsChanged(Exception):
    """A student to restore or update was changed or deleted after the lookup."""


def tenant_code(tenant_id: int) -> str | None:
    return Tenant.objects.filter(pk=tenant_id).values_list("code", flat=True).first()


def match_query(tenant_id: int, *, keys: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
    """The lookup statement for one block of keys (also used by the EXPLAIN test)."""
    names = [name for name, _ in keys]
    phones = [phone for _, phone in keys]
    return MATCH_SQL, [names, phones, tenant_id, tenant_id]


def students_matching(
    tenant_id: int, *, keys: Sequence[tuple[str, str]], block: int = LOOKUP_BLOCK
) -> list[ExistingStudent]:
    """Per key of ``keys``: the tenant's active student and its latest soft-deleted one."""
    found: list[ExistingStudent] = []
    with connection.cursor() as cursor:
        for start in range(0, len(keys), block):
            cursor.execute(*match_query(tenant_id, keys=keys[start : start + block]))
            for row in cursor.fetchall():
                found.append(
                    ExistingStudent(
                        id=row[0],
                        name=row[1],
                        parent_phone=row[2],
                        user_id=row[3],
                        ps_number=row[4],
                        deleted_at=row[5],
                        values=dict(zip(UPDATABLE_FIELDS, row[6:], strict=True)),
                    )
                )
    return found


@contextmanager
def students_import_lock(tenant_id: int, *, wait_seconds: float) -> Iterator[None]:
    """Hold the tenant's import lock (a session-level advisory lock) or raise ImportLockBusy.

    Session-level because an import commits many transactions; it is released in ``finally``
    and by PostgreSQL itself if the process dies with its connection. Polling try-lock rather
    than ``lock_timeout`` keeps the wait free of error handling inside transactions.
    """
    key = (_IMPORT_LOCK_NAMESPACE, tenant_id & 0x7FFF_FFFF)
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
            if cursor.fetchone()[0]:
                break
            if time.monotonic() >= deadline:
                raise ImportLockBusy(tenant_id)
            time.sleep(_LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        except DatabaseError:
            # The session is broken or its transaction aborted: closing it is what releases a
            # session-level lock for sure (a rollback does not).
            logger.warning("student import lock of tenant %s: closing the connection", tenant_id)
            connection.close()


def ps_numbers_reserve(tenant_id: int, *, count: int) -> range:
    """Reserve ``count`` consecutive student numbers of the tenant (ADR 0103).

    One statement: the counter row is created on first use (starting after the largest numeric
    ps_number already stored, for students that predate the counter) and otherwise advanced by
    ``count`` under its row lock. Numbers of rows that later fail are not reused.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_COUNTER_TABLE} AS c (tenant_id, last_value)
            SELECT %s, COALESCE(MAX(ps_number::bigint) FILTER (WHERE ps_number ~ '^[0-9]{{1,18}}$'), 0) + %s
              FROM {_STUDENT_TABLE} WHERE tenant_id = %s
            ON CONFLICT (tenant_id) DO UPDATE SET last_value = c.last_value + %s
            RETURNING last_value
            """,  # noqa: S608, E501 - constant table names
            [tenant_id, count, tenant_id, count],
        )
        last = int(cursor.fetchone()[0])
    return range(last - count + 1, last + 1)


def students_write(
    tenant_id: int,
    *,
    tenant_code: str,
    rows: Sequence[PlannedRow],
    ps_numbers: Mapping[int, str],
    password_hash: str | None,
) -> None:
    """Write one chunk of planned rows; the caller owns the transaction.

    Raises IntegrityError/DataError from the database and StudentsChanged when a restore or
    update finds its student changed since the lookup; the caller then replays row by row.
    """
    creates = [p for p in rows if p.action is Action.CREATE]
    restores = [p for p in rows if p.action is Action.RESTORE]
    updates = [p for p in rows if p.action is Action.UPDATE]

    # Users for new students and for restored students whose account is gone.
    needs_user = creates + [p for p in restores if p.user_id is None]
    new_users: dict[int, User] = {}
    if needs_user:
        if password_hash is None:
            raise ValueError("password_hash is required to create users")
        for planned in needs_user:
            ps_number = ps_numbers.get(planned.row.row_number) or planned.ps_number or ""
            new_users[planned.row.row_number] = User(
                username=username_for(tenant_code, ps_number),
                password=password_hash,
                first_name=planned.row.name,
                must_change_password=True,
            )
        User.objects.bulk_create(new_users.values())

    member_ids = [u.pk for u in new_users.values()] + [
        p.user_id for p in restores if p.user_id is not None
    ]
    if member_ids:
        TenantMembership.objects.bulk_create(
            [
                TenantMembership(tenant_id=tenant_id, user_id=user_id, role=Role.STUDENT.value)
                for user_id in member_ids
            ],
            # A restored student's membership may still exist.
            ignore_conflicts=True,
        )

    if creates:
        Student.objects.bulk_create(
            [_new_student(tenant_id, p, ps_numbers[p.row.row_number], new_users) for p in creates]
        )
    if restores:
        _update_students(tenant_id, restores, new_users, restore=True)
    if updates:
        _update_students(tenant_id, updates, new_users, restore=False)

    parents: dict[str, str] = {}
    for planned in rows:
        parents.setdefault(planned.row.parent_phone, planned.row.parent_name or "")
    if parents:
        Parent.objects.bulk_create(
            [Parent(tenant_id=tenant_id, phone=p, name=name) for p, name in parents.items()],
            # Parents are shared by siblings and earlier imports; an existing one is kept as is.
            ignore_conflicts=True,
        )


def _new_student(
    tenant_id: int, planned: PlannedRow, ps_number: str, new_users: Mapping[int, User]
) -> Student:
    row = planned.row
    return Student(
        tenant_id=tenant_id,
        name=row.name,
        parent_phone=row.parent_phone,
        phone=row.phone,
        user=new_users[row.row_number],
        ps_number=ps_number,
        school_type=row.school_type or "",
        high_school=row.high_school or "",
        middle_school=row.middle_school or "",
        high_school_class=row.high_school_class or "",
        major=row.major or "",
        grade=row.grade,
        memo=row.memo or "",
        gender=row.gender or "",
    )


_UPDATE_TYPES = {"grade": "smallint"}


def _update_students(
    tenant_id: int,
    rows: Sequence[PlannedRow],
    new_users: Mapping[int, User],
    *,
    restore: bool,
) -> None:
    """One UPDATE … FROM unnest(…) for all rows; NULL in an array means "keep the stored value"
    (an import never blanks a field), so rows with different changed fields share a statement.
    """
    ids = [p.student_id for p in rows if p.student_id is not None]
    user_ids = [
        new_users[p.row.row_number].pk if p.row.row_number in new_users else None for p in rows
    ]
    arrays: list[list[Any]] = [ids, user_ids]
    arrays += [[p.changes.get(name) for p in rows] for name in UPDATABLE_FIELDS]
    columns = ["id", "user_id", *UPDATABLE_FIELDS]
    types = ["bigint", "bigint", *(_UPDATE_TYPES.get(name, "text") for name in UPDATABLE_FIELDS)]
    unnest = ", ".join(f"%s::{t}[]" for t in types)
    assignments = ", ".join(f"{name} = COALESCE(k.{name}, s.{name})" for name in UPDATABLE_FIELDS)
    if restore:
        assignments += ", deleted_at = NULL, user_id = COALESCE(s.user_id, k.user_id)"
        state = "s.deleted_at IS NOT NULL"
    else:
        state = "s.deleted_at IS NULL"
    sql = f"""
        UPDATE {_STUDENT_TABLE} AS s
           SET {assignments}, updated_at = now()
          FROM unnest({unnest}) AS k({", ".join(columns)})
         WHERE s.tenant_id = %s AND s.id = k.id AND {state}
        RETURNING s.id
    """  # noqa: S608 - identifiers are constants
    with connection.cursor() as cursor:
        cursor.execute(sql, [*arrays, tenant_id])
        touched = {row[0] for row in cursor.fetchall()}
    if len(touched) != len(ids):
        raise StudentsChanged(sorted(set(ids) - touched))


def constraint_name(exc: BaseException) -> str | None:
    """The violated constraint of a database error, when PostgreSQL names one."""
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    return getattr(diag, "constraint_name", None) if diag is not None else None


def is_username_conflict(exc: BaseException) -> bool:
    if not isinstance(exc, IntegrityError):
        return False
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "table_name", None) == User._meta.db_table and "username" in (
        constraint_name(exc) or ""
    )
