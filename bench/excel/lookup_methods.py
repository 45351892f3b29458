"""Batch lookup of (name, parent_phone) keys: row-value IN vs unnest JOIN vs temp table + COPY.

    .venv/bin/python bench/excel/lookup_methods.py [--tenants 10] [--students-per-tenant 20000]

Builds a throw-away database with ``tenants x students-per-tenant`` students (5 % soft-deleted,
the two partial key indexes), then looks up 500, 2,000 and 10,000 keys of one tenant (2/3 of
them stored) with each method through Django's connection (client-side parameter binding, as
the repository runs). Every method returns the same columns of the active and soft-deleted
matches, each branch with its literal partial-index predicate, and must find the same rows.
Runs are interleaved (method after method, repeated) so machine noise hits all methods alike.
Prints markdown; ADR 0101 and bench/excel/RESULTS.md quote it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from _setup import django_on_bench_database, machine, seed_students

Keys = Sequence[tuple[str, str]]
Run = Callable[[], tuple[list[tuple[Any, ...]], int]]


def _columns() -> str:
    from domains.students.plan import UPDATABLE_FIELDS

    return "s.id, s.name, s.parent_phone, s.user_id, s.ps_number, s.deleted_at, " + ", ".join(
        f"s.{name}" for name in UPDATABLE_FIELDS
    )


def row_value_in(tenant_id: int, keys: Keys, *, block: int) -> tuple[list[tuple[Any, ...]], int]:
    """The seed's repository: WHERE (name, parent_phone) IN ((…), (…), …), per block."""
    from django.db import connection

    rows: list[tuple[Any, ...]] = []
    statements = 0
    columns = _columns()
    with connection.cursor() as cursor:
        for start in range(0, len(keys), block):
            part = keys[start : start + block]
            pairs = ", ".join(["(%s, %s)"] * len(part))
            params = [value for pair in part for value in pair]
            sql = " UNION ALL ".join(
                f"SELECT {columns} FROM students_student s WHERE s.tenant_id = %s "  # noqa: S608
                f"AND (s.name, s.parent_phone) IN ({pairs}) AND s.deleted_at {predicate}"
                for predicate in ("IS NULL", "IS NOT NULL")
            )
            cursor.execute(sql, [tenant_id, *params, tenant_id, *params])
            rows += cursor.fetchall()
            statements += 1
    return rows, statements


def unnest_join(tenant_id: int, keys: Keys, *, block: int) -> tuple[list[tuple[Any, ...]], int]:
    """The implementation: repository.match_query (unnest + LATERAL probes), per block."""
    from domains.students import repository

    rows: list[tuple[Any, ...]] = []
    statements = 0
    with repository.server_binding_cursor() as cursor:
        for start in range(0, len(keys), block):
            cursor.execute(*repository.match_query(tenant_id, keys=keys[start : start + block]))
            rows += cursor.fetchall()
            statements += 1
    return rows, statements


def unnest_plain_join(tenant_id: int, keys: Keys) -> tuple[list[tuple[Any, ...]], int]:
    """unnest JOIN without LATERAL: the planner may hash-join all the tenant's students.

    Same rows as the implementation when no key has both an active and a deleted student
    (true of this data set)."""
    from django.db import connection

    columns = _columns()
    sql = " UNION ALL ".join(
        f"SELECT {columns} FROM unnest(%s::text[], %s::text[]) AS k(name, parent_phone) "  # noqa: S608
        "JOIN students_student s "
        "ON s.tenant_id = %s AND s.name = k.name AND s.parent_phone = k.parent_phone "
        f"WHERE s.deleted_at {predicate}"
        for predicate in ("IS NULL", "IS NOT NULL")
    )
    names = [name for name, _ in keys]
    phones = [phone for _, phone in keys]
    with connection.cursor() as cursor:
        cursor.execute(sql, [names, phones, tenant_id, names, phones, tenant_id])
        return cursor.fetchall(), 1


def temp_table_copy(
    tenant_id: int, keys: Keys, *, analyze: bool
) -> tuple[list[tuple[Any, ...]], int]:
    """CREATE TEMP TABLE … ON COMMIT DROP, COPY the keys in, (ANALYZE,) one JOIN."""
    from django.db import connection, transaction

    columns = _columns()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE import_keys (name text, parent_phone text) ON COMMIT DROP"
        )
        with cursor.cursor.copy("COPY import_keys (name, parent_phone) FROM STDIN") as copy:
            for key in keys:
                copy.write_row(key)
        if analyze:
            cursor.execute("ANALYZE import_keys")
        sql = " UNION ALL ".join(
            f"SELECT {columns} FROM import_keys k JOIN students_student s "  # noqa: S608
            "ON s.tenant_id = %s AND s.name = k.name AND s.parent_phone = k.parent_phone "
            f"WHERE s.deleted_at {predicate}"
            for predicate in ("IS NULL", "IS NOT NULL")
        )
        cursor.execute(sql, [tenant_id, tenant_id])
        rows = cursor.fetchall()
    return rows, 4 if analyze else 3


def explain(sql: str, params: Sequence[object]) -> dict[str, Any]:
    from domains.students import repository

    # Server-side binding: the implementation's statement binds its arrays that way (%b).
    with repository.server_binding_cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, list(params))
        return cursor.fetchone()[0][0]  # type: ignore[no-any-return]


def index_names(plan: dict[str, Any]) -> list[str]:
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            found.add(node["Index Name"])
        if node.get("Node Type") == "Seq Scan":
            found.add(f"Seq Scan {node.get('Relation Name')}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return sorted(found)


def keys_of(count: int) -> list[tuple[str, str]]:
    stored = count * 2 // 3
    keys = [(f"학생{g}", f"0109{g:07d}") for g in range(1, stored + 1)]
    return keys + [(f"신입{g}", f"0108{g:07d}") for g in range(1, count - stored + 1)]


def methods_for(tenant_id: int, keys: Keys) -> list[tuple[str, Run]]:
    count = len(keys)
    runs: list[tuple[str, Run]] = [
        (
            f"row-value IN, {b} keys per statement",
            lambda b=b: row_value_in(tenant_id, keys, block=b),
        )
        for b in sorted({min(200, count), min(500, count), min(2000, count)})
    ]
    runs += [
        (
            f"unnest + LATERAL probes (implementation), {b:,} keys per statement",
            lambda b=b: unnest_join(tenant_id, keys, block=b),
        )
        for b in sorted({min(2000, count), min(5000, count), count})
    ]
    runs.append(("unnest plain JOIN, one statement", lambda: unnest_plain_join(tenant_id, keys)))
    runs += [
        ("temp table + COPY + JOIN", lambda: temp_table_copy(tenant_id, keys, analyze=False)),
        (
            "temp table + COPY + ANALYZE + JOIN",
            lambda: temp_table_copy(tenant_id, keys, analyze=True),
        ),
    ]
    return runs


def measure(tenant_id: int, count: int, repeat: int) -> list[str]:
    keys = keys_of(count)
    runs = methods_for(tenant_id, keys)
    times: dict[str, list[float]] = {label: [] for label, _ in runs}
    statements: dict[str, int] = {}
    expected: set[tuple[Any, ...]] | None = None
    for _ in range(repeat):
        for label, run in runs:
            began = time.perf_counter()
            rows, statements[label] = run()
            times[label].append((time.perf_counter() - began) * 1000)
            found = set(rows)
            expected = found if expected is None else expected
            if found != expected:
                raise AssertionError(f"{label} found other rows")
    best = min(statistics.median(t) for t in times.values())
    lines = [
        f"\n#### {count:,} keys ({len(expected or ()):,} matching rows)\n",
        "| method | statements | median ms | best ms | vs fastest |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, _ in runs:
        median = statistics.median(times[label])
        lines.append(
            f"| {label} | {statements[label]} | {median:,.1f} | {min(times[label]):,.1f} | "
            f"{median / best:.1f}x |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--students-per-tenant", type=int, default=20_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2_000, 10_000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    drop = django_on_bench_database("bench_students_lookup")
    try:
        tenant_ids = seed_students(tenants=args.tenants, per_tenant=args.students_per_tenant)
        tenant_id = tenant_ids[len(tenant_ids) // 2]
        total = args.tenants * args.students_per_tenant
        print("### Batch lookup of (name, parent_phone) keys\n")
        print(
            f"{args.tenants} tenants x {args.students_per_tenant:,} students ({total:,} rows, "
            f"5 % soft-deleted), keys of one tenant, {args.repeat} interleaved runs per method. "
            f"Machine: {machine()}."
        )
        for count in args.sizes:
            print("\n".join(measure(tenant_id, count, args.repeat)))

        from domains.students import repository

        print("\n#### Planning vs execution (EXPLAIN ANALYZE, ms) and the indexes used\n")
        print("| keys | row-value IN: plan / exec | implementation: plan / exec | it uses |")
        print("| ---: | ---: | ---: | --- |")
        columns = _columns()
        for size in (200, 500, 2000):
            part = keys_of(size)
            pairs = ", ".join(["(%s, %s)"] * size)
            flat = [v for pair in part for v in pair]
            in_sql = " UNION ALL ".join(
                f"SELECT {columns} FROM students_student s WHERE s.tenant_id = %s "  # noqa: S608
                f"AND (s.name, s.parent_phone) IN ({pairs}) AND s.deleted_at {predicate}"
                for predicate in ("IS NULL", "IS NOT NULL")
            )
            in_plan = explain(in_sql, [tenant_id, *flat, tenant_id, *flat])
            un_plan = explain(*repository.match_query(tenant_id, keys=part))
            print(
                f"| {size} | {in_plan['Planning Time']:.1f} / {in_plan['Execution Time']:.1f} | "
                f"{un_plan['Planning Time']:.1f} / {un_plan['Execution Time']:.1f} | "
                f"{', '.join(index_names(un_plan))} |"
            )
    finally:
        drop()


if __name__ == "__main__":
    main()
