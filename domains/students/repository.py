"""Database access for students: the only module here with `.objects` and SQL.

Every function takes ``tenant_id`` first and every statement filters by it. The import's
statements are set-based: one lookup per block of keys, and per chunk one INSERT per table and
one UPDATE per kind of change, whatever the number of rows (ADR 0101).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, IntegrityError, connection
from django.db.backends.postgresql.base import ServerBindingCursor
from django.utils import timezone

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
SELECT {_MATCH_OUTPUT} FROM unnest(%b::text[], %b::text[]) AS k(name, parent_phone)
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
    """The lookup statement for one block of keys. Its arrays are bound server-side (``%b``):
    run it on :func:`server_binding_cursor`, as :func:`students_matching` and
    :func:`match_plan` do."""
    names = [name for name, _ in keys]
    phones = [phone for _, phone in keys]
    return MATCH_SQL, [names, phones, tenant_id, tenant_id]


def match_plan(tenant_id: int, *, keys: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``EXPLAIN (FORMAT JSON)`` of the lookup for ``keys``: the plan's root node."""
    sql, params = match_query(tenant_id, keys=keys)
    with server_binding_cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan: dict[str, Any] = cursor.fetchone()[0][0]["Plan"]
    return plan


def students_matching(
    tenant_id: int, *, keys: Sequence[tuple[str, str]], block: int = LOOKUP_BLOCK
) -> list[ExistingStudent]:
    """Per key of ``keys``: the tenant's active student and its latest soft-deleted one."""
    found: list[ExistingStudent] = []
    with server_binding_cursor() as cursor:
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


def user_ids_reserve(count: int) -> list[int]:
    """Take ``count`` ids from the user table's sequence, one statement for the whole import.

    COPY returns nothing, so the users of new students get their ids before they are written
    and the memberships and students that point at them can be copied in the same chunk. Ids of
    rows that later fail are not reused (a sequence never gives a number back anyway).
    """
    if count <= 0:
        return []
    with server_binding_cursor() as cursor:
        cursor.execute(_RESERVE_USER_IDS_SQL, [count])
        return [row[0] for row in cursor.fetchall()]


def students_write(
    tenant_id: int,
    *,
    tenant_code: str,
    rows: Sequence[PlannedRow],
    ps_numbers: Mapping[int, str],
    user_ids: Mapping[int, int],
    password_hash: str | None,
) -> None:
    """Write one chunk of planned rows; the caller owns the transaction.

    ``user_ids`` maps the row number of every row that needs a new user (new students,
    restored students whose account is gone) to an id from :func:`user_ids_reserve`. New rows go
    in by COPY (users, memberships, students); restores and updates are one
    ``UPDATE … FROM unnest`` each and parents one ``INSERT … ON CONFLICT``, with the arrays
    bound server-side in binary (ADR 0104).

    Raises IntegrityError/DataError from the database and StudentsChanged when a restore or
    update finds its student changed since the lookup; the caller then replays row by row.
    """
    creates = [p for p in rows if p.action is Action.CREATE]
    restores = [p for p in rows if p.action is Action.RESTORE]
    updates = [p for p in rows if p.action is Action.UPDATE]
    now = timezone.now()

    # Users for new students and for restored students whose account is gone.
    needs_user = creates + [p for p in restores if p.user_id is None]
    if needs_user and password_hash is None:
        raise ValueError("password_hash is required to create users")
    with connection.cursor() as cursor:
        if needs_user:
            users_insert(
                cursor,
                [
                    (
                        user_ids[p.row.row_number],
                        username_for(
                            tenant_code,
                            ps_numbers.get(p.row.row_number) or p.ps_number or "",
                        ),
                        p.row.name,
                        password_hash,
                        now,
                    )
                    for p in needs_user
                ],
            )
        new_member_ids = [user_ids[p.row.row_number] for p in needs_user]
        kept_member_ids = [p.user_id for p in restores if p.user_id is not None]
        if new_member_ids or kept_member_ids:
            memberships_insert(
                cursor, tenant_id, new=new_member_ids, maybe_existing=kept_member_ids, now=now
            )
        if creates:
            _copy_rows(
                cursor,
                _STUDENT_TABLE,
                _STUDENT_COPY_COLUMNS,
                [
                    _new_student_row(
                        tenant_id, p, ps_numbers[p.row.row_number], user_ids[p.row.row_number], now
                    )
                    for p in creates
                ],
            )
    if restores:
        _update_students(tenant_id, restores, user_ids, restore=True)
    if updates:
        _update_students(tenant_id, updates, user_ids, restore=False)

    parents: dict[str, str] = {}
    for planned in rows:
        parents.setdefault(planned.row.parent_phone, planned.row.parent_name or "")
    if parents:
        parents_insert(tenant_id, parents, now=now)


# Every NOT NULL column is listed: the models declare no database defaults.
_USER_TABLE = User._meta.db_table
_USER_COPY_COLUMNS = (
    "id",
    "username",
    "first_name",
    "last_name",
    "email",
    "password",
    "is_superuser",
    "is_staff",
    "is_active",
    "date_joined",
    "must_change_password",
)
_MEMBERSHIP_TABLE = TenantMembership._meta.db_table
_MEMBERSHIP_COLUMNS = ("tenant_id", "user_id", "role", "is_active", "token_version", "created_at")
_STUDENT_COPY_COLUMNS = (
    "tenant_id",
    "name",
    "parent_phone",
    "phone",
    "user_id",
    "ps_number",
    "school_type",
    "high_school",
    "middle_school",
    "high_school_class",
    "major",
    "grade",
    "memo",
    "gender",
    "created_at",
    "updated_at",
)
_PARENT_TABLE = Parent._meta.db_table
_RESERVE_USER_IDS_SQL = f"""
    SELECT nextval(pg_get_serial_sequence('{_USER_TABLE}', 'id')) FROM generate_series(1, %s)
"""  # noqa: S608 - constant table name
_MEMBERSHIPS_UPSERT_SQL = f"""
    INSERT INTO {_MEMBERSHIP_TABLE} ({", ".join(_MEMBERSHIP_COLUMNS)})
    SELECT %s, u, %s, true, 0, %s FROM unnest(%b::bigint[]) AS u
    ON CONFLICT (tenant_id, user_id) DO NOTHING
"""  # noqa: S608 - constant names
# Parents are shared by siblings and earlier imports; an existing one is kept as is.
_PARENTS_INSERT_SQL = f"""
    INSERT INTO {_PARENT_TABLE} (tenant_id, phone, name, created_at)
    SELECT %s, p.phone, p.name, %s FROM unnest(%b::text[], %b::text[]) AS p(phone, name)
    ON CONFLICT (tenant_id, phone) DO NOTHING
"""  # noqa: S608 - constant names


def users_insert(cursor: Any, users: Sequence[tuple[int, str, str, str | None, Any]]) -> None:
    """COPY new users: (id, username, first name, password hash, date joined) each; they must
    change the shared initial password at first login."""
    _copy_rows(
        cursor,
        _USER_TABLE,
        _USER_COPY_COLUMNS,
        [
            (user_id, username, first_name, "", "", password, False, False, True, joined, True)
            for user_id, username, first_name, password, joined in users
        ],
    )


def memberships_insert(
    cursor: Any, tenant_id: int, *, new: Sequence[int], maybe_existing: Sequence[int], now: Any
) -> None:
    """Student memberships: COPY when every user is new, else one INSERT … ON CONFLICT (a
    restored student's membership may still exist)."""
    role = Role.STUDENT.value
    if not maybe_existing:
        _copy_rows(
            cursor,
            _MEMBERSHIP_TABLE,
            _MEMBERSHIP_COLUMNS,
            [(tenant_id, user_id, role, True, 0, now) for user_id in new],
        )
        return
    with server_binding_cursor() as bound:
        bound.execute(_MEMBERSHIPS_UPSERT_SQL, [tenant_id, role, now, [*new, *maybe_existing]])


def parents_insert(tenant_id: int, parents: Mapping[str, str], *, now: Any) -> None:
    with server_binding_cursor() as cursor:
        cursor.execute(_PARENTS_INSERT_SQL, [tenant_id, now, list(parents), list(parents.values())])


def _new_student_row(
    tenant_id: int, planned: PlannedRow, ps_number: str, user_id: int, now: Any
) -> tuple[Any, ...]:
    row = planned.row
    return (
        tenant_id,
        row.name,
        row.parent_phone,
        row.phone,
        user_id,
        ps_number,
        row.school_type or "",
        row.high_school or "",
        row.middle_school or "",
        row.high_school_class or "",
        row.major or "",
        row.grade,
        row.memo or "",
        row.gender or "",
        now,
        now,
    )


def _copy_rows(
    cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """``COPY table (columns) FROM STDIN`` with ``rows``, through Django's cursor (so a debug
    cursor logs it) and its execute wrappers (so instrumentation counts it as one statement),
    with database errors raised as Django's (IntegrityError, DataError)."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"

    def run(sql: str, params: Any, many: bool, context: Mapping[str, Any]) -> None:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    executor: Any = run
    for wrapper in reversed(connection.execute_wrappers):
        executor = functools.partial(wrapper, executor)
    with connection.wrap_database_errors:
        executor(statement, None, False, {"connection": connection, "cursor": cursor})


@contextmanager
def server_binding_cursor() -> Iterator[Any]:
    """A Django cursor whose parameters travel separately from the statement (server-side
    binding), so psycopg sends arrays as values (``%b``: binary) instead of quoting every
    element into the SQL text, which the default client-side binding does in Python."""
    connection.ensure_connection()
    # Django's own class for OPTIONS["server_side_binding"] (its stubs do not know psycopg 3).
    cursor_class: Any = ServerBindingCursor
    with connection.wrap_database_errors:
        raw = cursor_class(connection.connection)
    cursor = (
        connection.make_debug_cursor(raw)
        if connection.queries_logged
        else connection.make_cursor(raw)
    )
    with cursor:
        yield cursor


_UPDATE_TYPES = {"grade": "smallint"}


def _update_students(
    tenant_id: int,
    rows: Sequence[PlannedRow],
    user_ids: Mapping[int, int],
    *,
    restore: bool,
) -> None:
    """One UPDATE … FROM unnest(…) for all rows; NULL in an array means "keep the stored value"
    (an import never blanks a field), so rows with different changed fields share a statement.
    """
    ids = [p.student_id for p in rows if p.student_id is not None]
    new_user_ids = [user_ids.get(p.row.row_number) for p in rows]
    arrays: list[list[Any]] = [ids, new_user_ids]
    arrays += [[p.changes.get(name) for p in rows] for name in UPDATABLE_FIELDS]
    columns = ["id", "user_id", *UPDATABLE_FIELDS]
    types = ["bigint", "bigint", *(_UPDATE_TYPES.get(name, "text") for name in UPDATABLE_FIELDS)]
    unnest = ", ".join(f"%b::{t}[]" for t in types)
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
    with server_binding_cursor() as cursor:
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
