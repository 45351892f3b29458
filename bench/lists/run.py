"""The list endpoint on 100,000 rows (issue 13's benchmark): p50 / p99 of a page.

On a throw-away database with the seed of the EXPLAIN tests (tests/integration/lists/seed.py:
four tenants of 25,000 jobs and 25,000 videos), this times, in one run:

* the endpoint, ``GET /api/v1/jobs/`` through Django in process (JWT check, query, rows,
  JSON), for the first page and for a cursor page 15,000 rows down, as staff and as a teacher;
* its SQL alone through psycopg, on the same two pages (what the endpoint adds on top);
* the baselines: the same page as ``OFFSET 15000`` pagination, and the keyset SQL with the
  list index (jobs migration 0003) dropped inside a transaction (rolled back after), which is
  what the seed's indexes alone give.

Run: ``make bench-lists`` (writes bench/lists/RESULTS.md). ``BENCH_DATABASE_NAME`` overrides
the database name, so two runs on one server do not drop each other's database.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WARMUP = 30
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "400"))
DEEP = 15_000
PAGE = 20
PASSWORD = "bench-lists-password"  # noqa: S105 (a throw-away database)


def timed(call: Callable[[], Any], samples: int = SAMPLES) -> tuple[float, float]:
    """p50 and p99 of ``call`` in milliseconds, after a warm-up."""
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(samples):
        started = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - started) / 1e6)
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return statistics.median(times), cuts[98]


def main() -> None:
    name = os.environ.get("BENCH_DATABASE_NAME") or "bench_lists"
    from project import devservices

    services = devservices.ensure_services(with_moto=False)
    os.environ.update(services.env)
    os.environ.setdefault("DJANGO_ENV", "test")
    os.environ["TEST_DATABASE_NAME"] = name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DEBUG", "false")

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        rows = measure()
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)
    write_results(rows)


def measure() -> list[tuple[str, str, float, float]]:
    from django.db import connection, transaction
    from rest_framework.test import APIClient

    from domains.common.cursors import Cursor
    from domains.jobs import repository
    from domains.tenants import repository as tenants
    from domains.tenants.services import auth_token_issue
    from realtime.identity import Role
    from tests.integration.lists import seed

    started = time.perf_counter()
    data = seed.seed()
    seed_seconds = time.perf_counter() - started
    tenant_id = data.tenant_ids[0]
    tenant = tenants.tenant_upsert(code="plan-0", name="Plan 0")
    tenants.member_upsert(tenant_id, username="bench-staff", password=PASSWORD, role=Role.STAFF)
    # The teacher owning 1/100 of the tenant's jobs: a seeded user given a membership.
    with connection.cursor() as cursor:
        cursor.execute("SELECT username FROM tenants_user WHERE id = %s", [data.owner_id])
        (teacher_name,) = cursor.fetchone()
    tenants.member_upsert(tenant_id, username=teacher_name, password=PASSWORD, role=Role.TEACHER)

    def client(username: str) -> APIClient:
        api = APIClient()
        token = auth_token_issue(
            tenant_code=tenant.code, username=username, password=PASSWORD
        ).access
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return api

    staff_client, teacher_client = client("bench-staff"), client(teacher_name)
    deep = repository.JobListRow(
        *repository.jobs_page_query(tenant_id, owner_id=None, limit=DEEP + 1)[DEEP]
    ).key

    def get(api: APIClient, query: str) -> Callable[[], None]:
        def call() -> None:
            response = api.get(f"/api/v1/jobs/?{query}")
            assert response.status_code == 200, response.content
            assert len(response.json()["results"]) >= 1

        return call

    def sql(query: Any) -> Callable[[], None]:
        text, params = query.query.sql_with_params()

        def call() -> None:
            with connection.cursor() as cursor:
                cursor.execute(text, params)
                assert cursor.fetchall()

        return call

    def keyset(after: Cursor | None) -> Any:
        return repository.jobs_page_query(tenant_id, owner_id=None, after=after, limit=PAGE + 1)

    def offset(depth: int) -> Any:
        return repository.jobs_page_query(tenant_id, owner_id=None, limit=depth + PAGE + 1)[
            depth : depth + PAGE + 1
        ]

    results: list[tuple[str, str, float, float]] = []

    def row(what: str, page: str, call: Callable[[], None]) -> None:
        p50, p99 = timed(call)
        results.append((what, page, p50, p99))
        print(f"{what:58} {page:18} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms", flush=True)

    cursor_query = f"cursor={deep.encode()}"
    row("endpoint, staff", "first page", get(staff_client, ""))
    row("endpoint, staff", f"{DEEP:,} rows down", get(staff_client, cursor_query))
    row("endpoint, staff, status=PROCESSING", "first page", get(staff_client, "status=PROCESSING"))
    row("endpoint, teacher (own jobs)", "first page", get(teacher_client, ""))
    row("SQL only (psycopg), keyset", "first page", sql(keyset(None)))
    row("SQL only (psycopg), keyset", f"{DEEP:,} rows down", sql(keyset(deep)))
    row("baseline: SQL, OFFSET pagination", "first page", sql(offset(0)))
    row("baseline: SQL, OFFSET pagination", f"{DEEP:,} rows down", sql(offset(DEEP)))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX job_tenant_created_idx")
        row("baseline: SQL, keyset, seed indexes only", "first page", sql(keyset(None)))
        row("baseline: SQL, keyset, seed indexes only", f"{DEEP:,} rows down", sql(keyset(deep)))
        transaction.set_rollback(True)
    print(f"seeded in {seed_seconds:.1f} s", flush=True)
    results.append(("(seed: 100,000 jobs + 100,000 videos)", f"{seed_seconds:.1f} s", 0.0, 0.0))
    return results


def write_results(rows: list[tuple[str, str, float, float]]) -> None:
    measured = [r for r in rows if r[2] > 0]
    seed_note = next((r[1] for r in rows if r[2] == 0), "?")
    lines = [
        "# List endpoint benchmark",
        "",
        f"`make bench-lists`, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()} "
        f"{os.cpu_count()} vCPU, Python {platform.python_version()}, "
        f"{SAMPLES} samples after {WARMUP} warm-up calls per row. One tenant of 25,000 jobs among "
        f"four (100,000 jobs and 100,000 videos, seeded in {seed_note} by "
        "`tests/integration/lists/seed.py`), pages of 20 rows. The endpoint is timed through "
        "Django in process (JWT check, one query, serializer, JSON), without a network hop.",
        "",
        "| what | page | p50 ms | p99 ms |",
        "| --- | --- | ---: | ---: |",
        *[f"| {what} | {page} | {p50:.2f} | {p99:.2f} |" for what, page, p50, p99 in measured],
        "",
        *reading(measured),
        "",
        "Figures move ±30 % between days on these shared machines; compare within one run.",
        "",
    ]
    (ROOT / "bench" / "lists" / "RESULTS.md").write_text("\n".join(lines), encoding="utf-8")


def reading(rows: list[tuple[str, str, float, float]]) -> list[str]:
    """Ratios of this run's p50s, so the text never contradicts the table above it."""
    p50 = {(what, page): value for what, page, value, _ in rows}
    deep = f"{DEEP:,} rows down"
    keyset_first = p50[("SQL only (psycopg), keyset", "first page")]
    keyset_deep = p50[("SQL only (psycopg), keyset", deep)]
    offset_deep = p50[("baseline: SQL, OFFSET pagination", deep)]
    seedonly_first = p50[("baseline: SQL, keyset, seed indexes only", "first page")]
    endpoint_deep = p50[("endpoint, staff", deep)]
    return [
        "Reading, p50: the keyset query 15,000 rows down costs "
        f"{keyset_deep / keyset_first:.1f}x its first page; OFFSET there costs "
        f"{offset_deep / keyset_deep:.0f}x the keyset page. Without the list index even the "
        f"first page costs {seedonly_first / keyset_first:.0f}x (the tenant's rows are read "
        "and sorted). The endpoint's deep page costs "
        f"{endpoint_deep:.1f} ms, of which {keyset_deep:.2f} ms is the query.",
    ]


if __name__ == "__main__":
    main()
