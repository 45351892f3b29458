"""Student import helpers: rows as a sheet yields them, a progress recorder, table snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection

from domains.students.rows import RawRow

PASSWORD = "first-login-2025"
COLUMNS = (
    ("name", "이름"),
    ("parent_phone", "학부모 전화번호"),
    ("phone", "전화번호"),
    ("school", "학교"),
    ("grade", "학년"),
    ("gender", "성별"),
    ("memo", "메모"),
)


def rows(*values: Sequence[object], first_row: int = 2) -> list[RawRow]:
    """RawRows as read from a sheet with COLUMNS, numbered from ``first_row``."""
    fields = [name for name, _ in COLUMNS]
    return [RawRow(first_row + i, dict(zip(fields, v, strict=False))) for i, v in enumerate(values)]


def many(count: int, *, start: int = 0, first_row: int = 2) -> list[RawRow]:
    """``count`` distinct valid students."""
    return rows(
        *[
            (f"학생{n:05d}", f"0109{n:07d}", None, "대치중", 2, "남", None)
            for n in range(start, start + count)
        ],
        first_row=first_row,
    )


@dataclass
class RecordingProgress:
    calls: list[tuple[str, int, int, float, float | None]] = field(default_factory=list)

    def __call__(
        self,
        step: str,
        step_index: int,
        step_total: int,
        percent: float,
        remaining_seconds: float | None,
    ) -> None:
        self.calls.append((step, step_index, step_total, percent, remaining_seconds))


TABLES = (
    "students_student",
    "students_parent",
    "students_studentnumbercounter",
    "tenants_user",
    "tenants_tenantmembership",
)


def table_counts(tables: Iterable[str] = TABLES) -> dict[str, int]:
    """Row counts of the tables an import writes (for "nothing was written" checks)."""
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - constant names
            counts[table] = cursor.fetchone()[0]
    return counts
