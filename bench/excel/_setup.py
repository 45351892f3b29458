"""Shared set-up of the Excel import benchmarks: Django on a throw-away database.

Services are resolved like the tests do (project.devservices: DATABASE_URL, else a local
PostgreSQL, else an embedded one); the benchmark creates its own database with every
migration applied and drops it at the end, so it never touches dev or test data.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def django_on_bench_database(name: str) -> Callable[[], None]:
    """Set Django up on a fresh database ``name``; returns the function that drops it.

    ``BENCH_DATABASE_NAME`` overrides ``name``, so two runs on one server (other worktrees,
    other agents) do not drop each other's database.
    """
    name = os.environ.get("BENCH_DATABASE_NAME") or name
    from project import devservices

    services = devservices.ensure_services(with_moto=False)
    os.environ.update(services.env)
    os.environ.setdefault("DJANGO_ENV", "test")
    # The import runs in worker processes: persistent connection, no pool.
    os.environ["ACADEMY_PROCESS"] = "worker"
    os.environ["TEST_DATABASE_NAME"] = name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # As in production workers: DEBUG would keep every SQL statement in memory.
    os.environ.setdefault("DEBUG", "false")

    import django

    django.setup()
    from django.conf import global_settings, settings
    from django.db import connection

    # DJANGO_ENV=test swaps in the MD5 hasher to speed the test suite up; the benchmark
    # measures production's hasher (Django's default PBKDF2), as the seed's loop paid it.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS

    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)

    def drop() -> None:
        connection.creation.destroy_test_db(original, verbosity=0)
        services.stop()

    return drop


def machine() -> str:
    from django.db import connection

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    import django
    import psycopg

    return (
        f"{os.cpu_count()} CPU ({cpu}), Python {platform.python_version()}, "
        f"Django {django.get_version()}, psycopg {psycopg.__version__}, PostgreSQL {pg} "
        f"({'unix socket' if 'host=/' in os.environ.get('DATABASE_URL', '') else 'TCP localhost'})"
    )


def seed_students(*, tenants: int, per_tenant: int, deleted_every: int = 20) -> list[int]:
    """``tenants`` tenants with ``per_tenant`` students each, every ``deleted_every``-th
    soft-deleted, generated set-based by PostgreSQL. Returns the tenant ids."""
    from django.db import connection

    from domains.tenants.models import Tenant

    created = Tenant.objects.bulk_create(
        [Tenant(code=f"bench-{i}", name=f"Bench {i}") for i in range(tenants)]
    )
    ids = [t.id for t in created]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO students_student
                (tenant_id, name, parent_phone, ps_number, school_type, high_school,
                 middle_school, high_school_class, major, grade, memo, gender, deleted_at,
                 created_at, updated_at)
            SELECT t, '학생' || g, '0109' || lpad(g::text, 7, '0'), lpad(g::text, 6, '0'),
                   'middle', '', '대치중', '', '', 2, '', 'M',
                   CASE WHEN g %% %s = 0 THEN now() END, now(), now()
              FROM unnest(%s::bigint[]) AS t, generate_series(1, %s) AS g
            """,
            [deleted_every, ids, per_tenant],
        )
        cursor.execute("ANALYZE students_student")
    return ids
