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

The peer is django-import-export in bulk mode (peer_import_export.py), measured the same way
on the same rows and the same starting state, right after ours in each scenario; both must
leave identical student values. It writes students only, so for ours the time of the users,
memberships and parents (their ``bulk_create`` calls, timed in the same run) is also taken
out: "student-only (est.)" = wall - hash - those writes. Every figure of one table comes from
one run; compare ratios, the machine is shared.

Use a database of your own when others may run benchmarks on the same server::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_excel_peer \
    BENCH_DATABASE_NAME=bench_excel_peer_run .venv/bin/python bench/excel/import_bench.py
"""

from __future__ import annotations

import argparse
import io
import sys
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


@contextmanager
def timing_other_writes(statements: list[int]) -> Iterator[dict[str, float]]:
    """Time the writes of users, memberships and parents: our importer's work beyond the
    student rows (the peer does none of it). Counts their statements too."""
    from domains.students import repository

    spent = {"seconds": 0.0, "statements": 0}
    names = ("users_insert", "memberships_insert", "parents_insert")
    originals = {name: getattr(repository, name) for name in names}

    def timed(original: Callable[..., Any]) -> Callable[..., Any]:
        def write(*args: Any, **kwargs: Any) -> Any:
            began, sent = time.perf_counter(), statements[0]
            try:
                return original(*args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - began
                spent["statements"] += statements[0] - sent

        return write

    for name, original in originals.items():
        setattr(repository, name, timed(original))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(repository, name, original)


def student_values(tenant_id: int) -> tuple[int, str]:
    """Count and digest of the tenant's active students' imported values."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*), md5(string_agg(concat_ws('|', name, parent_phone,
                       coalesce(phone, '<null>'), school_type, high_school, middle_school,
                       high_school_class, major, grade, memo, gender), ','
                       ORDER BY name, parent_phone))
              FROM students_student
             WHERE tenant_id = %s AND deleted_at IS NULL
            """,
            [tenant_id],
        )
        return cursor.fetchone()


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
    with (
        timing_hashes() as hashed,
        counting_statements() as statements,
        timing_other_writes(statements) as other,
    ):
        began = time.perf_counter()
        result = students_import_rows(
            tenant_id, rows=rows, initial_password=PASSWORD, chunk_size=chunk_size
        )
        wall = time.perf_counter() - began
    counts = result.counts()
    assert counts["failed"] == 0, result.as_dict()["failed_rows"][:3]
    assert counts["created"] == count - existing, counts
    assert counts["updated"] == existing, counts
    values = student_values(tenant_id)

    rows = make_rows(count, existing)
    tenant_id = new_tenant("bench-mem", existing)
    tracemalloc.start()
    students_import_rows(tenant_id, rows=rows, initial_password=PASSWORD, chunk_size=chunk_size)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "wall": wall,
        "hash": hashed[0],
        "other": other["seconds"],
        "statements": statements[0],
        "other_statements": other["statements"],
        "peak_mb": peak / 1024 / 1024,
        "values": values,
    }


def run_peer(count: int, existing: int, *, variant: str) -> dict[str, Any]:
    """django-import-export on the same rows, in a fresh tenant with the same stored students."""
    from peer_import_export import dataset_from, import_students

    dataset = dataset_from(make_rows(count, existing))
    tenant_id = new_tenant(f"peer-{variant}", existing)
    with counting_statements() as statements:
        began = time.perf_counter()
        totals = import_students(tenant_id, dataset, variant=variant)
        wall = time.perf_counter() - began
    assert totals["new"] == count - existing, totals
    assert totals["update"] == existing, totals
    values = student_values(tenant_id)

    dataset = dataset_from(make_rows(count, existing))
    tenant_id = new_tenant(f"peer-{variant}-mem", existing)
    tracemalloc.start()
    import_students(tenant_id, dataset, variant=variant)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "wall": wall,
        "statements": statements[0],
        "peak_mb": peak / 1024 / 1024,
        "values": values,
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


def xlsx_read_seconds(count: int) -> tuple[float, float]:
    """Reading the same .xlsx: ours (``read_students_xlsx``) and the peer's (tablib through
    django-import-export's XLSX format, as its admin does)."""
    from import_export.formats.base_formats import XLSX
    from openpyxl import Workbook

    from domains.students.xlsx import read_students_xlsx

    # Not write-only: that mode writes no <dimension>, and then read-only openpyxl returns rows
    # cut after their last non-empty cell, which import_export's XLSX format cannot load
    # (tablib InvalidDimensions). Excel and LibreOffice write the dimension.
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["이름", "학부모 전화번호", "전화번호", "학교", "학년", "성별", "메모"])
    fields = ("name", "parent_phone", "phone", "school", "grade", "gender", "memo")
    for row in make_rows(count, 0):
        sheet.append([row.values[k] for k in fields])
    buffer = io.BytesIO()
    workbook.save(buffer)
    data = buffer.getvalue()
    began = time.perf_counter()
    parsed = read_students_xlsx(data)
    ours = time.perf_counter() - began
    assert len(parsed.rows) == count
    began = time.perf_counter()
    dataset = XLSX().create_dataset(data)
    peer = time.perf_counter() - began
    assert len(dataset) == count
    return ours, peer


PEER_VARIANTS = ("shipped", "cached", "force_init")


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def _ratio(value: float | None, reference: float) -> str:
    return "" if value is None else f"{value / reference:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 5_000, 10_000])
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--skip-hash-per-user", action="store_true")
    parser.add_argument(
        "--peer", nargs="*", choices=PEER_VARIANTS, default=list(PEER_VARIANTS), metavar="VARIANT"
    )
    args = parser.parse_args()

    drop = django_on_bench_database("bench_students_import")
    try:
        seed_students(tenants=5, per_tenant=20_000)
        lines = [
            "| scenario | rows | wall s | of which hash s | wall - hash s | student-only s "
            "(est.) | SQL statements | peak Python MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        ratios = [
            "| rows | scenario | ours wall - hash s | ours student-only s (est.) | "
            + " | ".join(f"peer {v} ÷ ours" for v in args.peer)
            + " | seed loop ÷ ours |",
            "| ---: | --- | ---: | ---: |" + " ---: |" * (len(args.peer) + 1),
        ]
        ours_at: dict[tuple[int, int], dict[str, Any]] = {}
        for count in args.sizes:
            for label, existing in (("new", 0), ("50 % existing (updated)", count // 2)):
                # Ours then the peer's variants, back to back: same load, same starting state.
                progress(f"ours {count} {label}")
                r = run_import(count, existing, chunk_size=args.chunk_size)
                ours_at[(count, existing)] = r
                own = r["wall"] - r["hash"]
                students_only = own - r["other"]
                lines.append(
                    f"| this import, {label} | {count:,} | {r['wall']:.2f} | {r['hash']:.2f} | "
                    f"{own:.2f} | {students_only:.2f} | {r['statements']:,} "
                    f"(users, memberships, parents: {r['other_statements']:,}) | "
                    f"{r['peak_mb']:.1f} |"
                )
                peers: dict[str, float | None] = {}
                for variant in args.peer:
                    if variant == "force_init" and existing:
                        peers[variant] = None  # only correct when every row is new
                        continue
                    progress(f"peer {variant} {count} {label}")
                    p = run_peer(count, existing, variant=variant)
                    assert p["values"] == r["values"], (variant, p["values"], r["values"])
                    peers[variant] = p["wall"]
                    lines.append(
                        f"| django-import-export bulk, {variant}, {label} | {count:,} | "
                        f"{p['wall']:.2f} | | | {p['wall']:.2f} | {p['statements']:,} | "
                        f"{p['peak_mb']:.1f} |"
                    )
                ratios.append(
                    f"| {count:,} | {label} | {own:.2f} | {students_only:.2f} | "
                    + " | ".join(
                        f"{_ratio(peers[v], own)} (student-only {_ratio(peers[v], students_only)})"
                        if peers[v] is not None
                        else "n/a"
                        for v in args.peer
                    )
                    + " | |"
                )
        baselines = [("hash once", False)]
        if not args.skip_hash_per_user:
            baselines.append(("create_user per row (seed)", True))
        for label, per_user in baselines:
            progress(f"seed loop {label} {args.baseline_rows}")
            b = run_baseline(args.baseline_rows, hash_per_user=per_user)
            peak = "" if b["peak_mb"] is None else f"{b['peak_mb']:.1f}"
            lines.append(
                f"| seed get_or_create loop, {label}, new | {args.baseline_rows:,} | "
                f"{b['wall']:.2f} | | | | {b['statements']:,} | {peak} |"
            )
            ours = ours_at.get((args.baseline_rows, 0))
            if ours is not None:
                # Against our full wall time: the seed loop does users etc. too.
                ratios.append(
                    f"| {args.baseline_rows:,} | new, seed loop {label} | "
                    f"{ours['wall'] - ours['hash']:.2f} | | "
                    + " | ".join("" for _ in args.peer)
                    + f" | {_ratio(b['wall'], ours['wall'])} of ours with its hash, "
                    f"{_ratio(b['wall'], ours['wall'] - ours['hash'])} without |"
                )
        reads = [(count, *xlsx_read_seconds(count)) for count in args.sizes]

        print("### Student import end to end, with django-import-export as the peer\n")
        print(
            f"Chunks of {args.chunk_size}; 100,000 students of 5 other tenants in the table. "
            f"Machine: {machine()}.\n"
        )
        print("\n".join(lines))
        print()
        print("Ratios, time ÷ ours (wall - hash); above 1x the other is slower:\n")
        print("\n".join(ratios))
        print()
        print("Reading the rows from an .xlsx first, ours (openpyxl read-only, ")
        print("`read_students_xlsx`) / the peer's (tablib via import_export's XLSX format):")
        print(
            ", ".join(f"{count:,} rows {ours:.2f} s / {peer:.2f} s" for count, ours, peer in reads)
            + "."
        )
    finally:
        drop()


if __name__ == "__main__":
    main()
