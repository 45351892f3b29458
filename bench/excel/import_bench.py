"""The student import end to end: 1,000 / 5,000 / 10,000 rows vs a row-by-row get_or_create loop.

    .venv/bin/python bench/excel/import_bench.py [--sizes 1000 5000 10000] [--baseline-rows 1000]

On a throw-away database holding 100,000 other students (5 tenants), each scenario imports
into a tenant of its own:

- ``new``: every row creates a student, a user, a membership and a parent;
- ``50 % existing``: half the rows match stored students with a changed grade (updates), half
  are new.

Reported per scenario: wall time of ``students_import_rows`` (rows already read), the part
spent in the one password hash, the SQL statements sent, and the peak of Python allocations
(tracemalloc, measured in a second run on a fresh tenant because tracing slows Python down).
Reading the same rows from an .xlsx is timed separately. The baseline is the seed's loop
(get_or_create per row, one transaction per row, a user per row), run for real at
``--baseline-rows`` rows, once hashing per user as the seed does and once with the hash
hoisted out, so the query cost can be compared on its own.
"""

from __future__ import annotations

import argparse
import io
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _setup import django_on_bench_database, machine, seed_students

PASSWORD = "first-login-2025"  # noqa: S105 - a benchmark fixture


@contextmanager
def counting_statements() -> Iterator[list[int]]:
    from django.db import connection

    counter = [0]

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        counter[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield counter


@contextmanager
def timing_hashes() -> Iterator[list[float]]:
    """Time the service's password hashing (it hashes once per import)."""
    from domains.students import services

    spent = [0.0]
    original = services.make_password

    def timed(password: str, *args: Any, **kwargs: Any) -> str:
        began = time.perf_counter()
        try:
            return original(password, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - began

    services.make_password = timed  # type: ignore[assignment]
    try:
        yield spent
    finally:
        services.make_password = original  # type: ignore[assignment]


def make_rows(count: int, existing: int) -> list[Any]:
    from domains.students.rows import RawRow

    rows = []
    for n in range(count):
        # the first `existing` keys are stored with grade 2; the file says 3
        rows.append(
            RawRow(
                n + 2,
                {
                    "name": f"학생{n}",
                    "parent_phone": f"0109{n:07d}",
                    "phone": f"0107{n:07d}" if n % 3 else None,
                    "school": "대치중" if n % 2 else "휘문고",
                    "grade": 3,
                    "gender": "남" if n % 2 else "여",
                    "memo": "수학 심화반" if n % 5 == 0 else None,
                },
            )
        )
    return rows


def new_tenant(label: str, existing: int) -> int:
    from django.db import connection

    from domains.tenants.models import Tenant

    tenant = Tenant.objects.create(code=f"{label}-{time.monotonic_ns()}", name=label)
    if existing:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO students_student
                    (tenant_id, name, parent_phone, phone, ps_number, school_type, high_school,
                     middle_school, high_school_class, major, grade, memo, gender,
                     created_at, updated_at)
                SELECT %s, '학생' || n, '0109' || lpad(n::text, 7, '0'),
                       CASE WHEN n %% 3 <> 0 THEN '0107' || lpad(n::text, 7, '0') END,
                       lpad((n + 1)::text, 6, '0'),
                       CASE WHEN n %% 2 = 1 THEN 'middle' ELSE 'high' END,
                       CASE WHEN n %% 2 = 1 THEN '' ELSE '휘문고' END,
                       CASE WHEN n %% 2 = 1 THEN '대치중' ELSE '' END, '', '', 2,
                       CASE WHEN n %% 5 = 0 THEN '수학 심화반' ELSE '' END,
                       CASE WHEN n %% 2 = 1 THEN 'M' ELSE 'F' END, now(), now()
                  FROM generate_series(0, %s - 1) AS n
                """,
                [tenant.id, existing],
            )
            cursor.execute("ANALYZE students_student")
    return tenant.id


def run_import(count: int, existing: int, *, chunk_size: int) -> dict[str, Any]:
    from domains.students.services import students_import_rows

    rows = make_rows(count, existing)
    tenant_id = new_tenant("bench", existing)
    with timing_hashes() as hashed, counting_statements() as statements:
        began = time.perf_counter()
        result = students_import_rows(
            tenant_id, rows=rows, initial_password=PASSWORD, chunk_size=chunk_size
        )
        wall = time.perf_counter() - began
    counts = result.counts()
    assert counts["failed"] == 0, result.as_dict()["failed_rows"][:3]
    assert counts["created"] == count - existing, counts
    assert counts["updated"] == existing, counts

    rows = make_rows(count, existing)
    tenant_id = new_tenant("bench-mem", existing)
    tracemalloc.start()
    students_import_rows(tenant_id, rows=rows, initial_password=PASSWORD, chunk_size=chunk_size)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "wall": wall,
        "hash": hashed[0],
        "statements": statements[0],
        "peak_mb": peak / 1024 / 1024,
    }


def seed_loop(tenant_id: int, rows: list[Any], *, hash_per_user: bool) -> None:
    """The seed's importer before the redesign: get_or_create per row, a transaction per row,
    create_user (one PBKDF2 hash) per new student, membership and parent per row."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.db.models import Max

    from domains.students.models import Parent, Student
    from domains.students.rows import normalize_row
    from domains.tenants.models import Tenant, TenantMembership, User

    tenant = Tenant.objects.get(pk=tenant_id)
    shared_hash = None if hash_per_user else make_password(PASSWORD)
    for raw in rows:
        row = normalize_row(raw)
        with transaction.atomic():
            student, created = Student.objects.get_or_create(
                tenant=tenant,
                name=row.name,  # type: ignore[union-attr]
                parent_phone=row.parent_phone,  # type: ignore[union-attr]
                deleted_at=None,
                defaults={"ps_number": "pending"},
            )
            if not created:
                if student.grade != row.grade:  # type: ignore[union-attr]
                    student.grade = row.grade  # type: ignore[union-attr]
                    student.save(update_fields=["grade", "updated_at"])
                continue
            last = Student.objects.filter(tenant=tenant).aggregate(m=Max("id"))["m"]
            student.ps_number = f"L{last:08d}"
            if shared_hash is None:
                user = User.objects.create_user(
                    username=f"{tenant.code}-{student.ps_number}", password=PASSWORD
                )
            else:
                user = User.objects.create(
                    username=f"{tenant.code}-{student.ps_number}", password=shared_hash
                )
            user.must_change_password = True
            user.save(update_fields=["must_change_password"])
            TenantMembership.objects.get_or_create(
                tenant=tenant, user=user, defaults={"role": "student"}
            )
            for name in ("phone", "school_type", "high_school", "middle_school", "grade"):
                value = getattr(row, name)
                if value is not None:
                    setattr(student, name, value)
            student.user = user
            student.save()
            Parent.objects.get_or_create(tenant=tenant, phone=row.parent_phone)  # type: ignore[union-attr]


def run_baseline(count: int, *, hash_per_user: bool) -> dict[str, Any]:
    rows = make_rows(count, 0)
    tenant_id = new_tenant("seed", 0)
    with counting_statements() as statements:
        began = time.perf_counter()
        seed_loop(tenant_id, rows, hash_per_user=hash_per_user)
        wall = time.perf_counter() - began
    if hash_per_user:
        return {"wall": wall, "statements": statements[0], "peak_mb": None}
    tenant_id = new_tenant("seed-mem", 0)
    tracemalloc.start()
    seed_loop(tenant_id, make_rows(count, 0), hash_per_user=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"wall": wall, "statements": statements[0], "peak_mb": peak / 1024 / 1024}


def xlsx_read_seconds(count: int) -> float:
    from openpyxl import Workbook

    from domains.students.xlsx import read_students_xlsx

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(["이름", "학부모 전화번호", "전화번호", "학교", "학년", "성별", "메모"])
    for row in make_rows(count, 0):
        sheet.append([row.values[k] for k in ("name", "parent_phone", "phone", "school")] + [3])
    buffer = io.BytesIO()
    workbook.save(buffer)
    began = time.perf_counter()
    parsed = read_students_xlsx(buffer.getvalue())
    assert len(parsed.rows) == count
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 5_000, 10_000])
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--skip-hash-per-user", action="store_true")
    args = parser.parse_args()

    drop = django_on_bench_database("bench_students_import")
    try:
        seed_students(tenants=5, per_tenant=20_000)
        lines = [
            "| scenario | rows | wall s | of which hash s | wall - hash s | SQL statements "
            "| peak Python MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for count in args.sizes:
            for label, existing in (("new", 0), ("50 % existing (updated)", count // 2)):
                r = run_import(count, existing, chunk_size=args.chunk_size)
                lines.append(
                    f"| this import, {label} | {count:,} | {r['wall']:.2f} | {r['hash']:.2f} | "
                    f"{r['wall'] - r['hash']:.2f} | {r['statements']:,} | {r['peak_mb']:.1f} |"
                )
        baselines = [("hash once", False)]
        if not args.skip_hash_per_user:
            baselines.append(("create_user per row (seed)", True))
        for label, per_user in baselines:
            r = run_baseline(args.baseline_rows, hash_per_user=per_user)
            peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.1f}"
            lines.append(
                f"| seed get_or_create loop, {label}, new | {args.baseline_rows:,} | "
                f"{r['wall']:.2f} | | | {r['statements']:,} | {peak} |"
            )
        reads = [(count, xlsx_read_seconds(count)) for count in args.sizes]

        print("### Student import end to end\n")
        print(
            f"Chunks of {args.chunk_size}; 100,000 students of 5 other tenants in the table. "
            f"Machine: {machine()}.\n"
        )
        print("\n".join(lines))
        print()
        print("Reading the rows from an .xlsx first (openpyxl read-only, `read_students_xlsx`):")
        print(", ".join(f"{count:,} rows {seconds:.2f} s" for count, seconds in reads) + ".")
    finally:
        drop()


if __name__ == "__main__":
    main()
