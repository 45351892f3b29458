"""The import's SQL is set-based: a constant number of statements per chunk, whatever its size,
and the lookup uses the partial key indexes."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains.students import repository
from domains.students.models import Student
from domains.students.services import students_import_rows
from domains.tenants.models import Tenant
from tests.support.students import PASSWORD, many

pytestmark = pytest.mark.django_db

# Per import: tenant code, lock, lookup, number reservation, user id reservation, unlock (+ one
# lookup per 5,000 keys). Per chunk: users, memberships, students, restores, updates, parents,
# plus the SAVEPOINT/RELEASE pair the test's surrounding transaction turns the chunk's
# BEGIN/COMMIT into.
PER_IMPORT = 6
PER_CHUNK = 8


def statements(captured: CaptureQueriesContext, prefix: str) -> int:
    return sum(1 for q in captured.captured_queries if q["sql"].lstrip().startswith(prefix))


def test_importing_5000_new_students_costs_a_constant_number_of_statements_per_chunk(
    alpha: Tenant,
) -> None:
    # given 5,000 new students, written in chunks of 500
    data = many(5_000)
    chunks = 10

    # when
    with CaptureQueriesContext(connection) as captured:
        result = students_import_rows(
            alpha.id, rows=data, initial_password=PASSWORD, chunk_size=500
        )

    # then
    assert result.counts()["created"] == 5_000
    assert len(captured) <= PER_IMPORT + PER_CHUNK * chunks, [
        q["sql"][:80] for q in captured.captured_queries
    ]
    # one COPY (or INSERT) per table and chunk, no per-row statement
    assert statements(captured, "COPY students_student ") == chunks
    assert statements(captured, "COPY tenants_user ") == chunks
    assert statements(captured, "COPY tenants_tenantmembership ") == chunks
    assert statements(captured, "INSERT INTO students_parent ") == chunks
    assert statements(captured, "SELECT") <= 5  # tenant, lock, lookup, user ids, unlock


def test_a_mixed_import_still_costs_a_constant_number_per_chunk(alpha: Tenant) -> None:
    # given 300 students to update, 200 to restore and 500 new ones, in chunks of 250
    students_import_rows(alpha.id, rows=many(500), initial_password=PASSWORD)
    deleted = Student.objects.filter(tenant=alpha).order_by("name")[300:500]
    Student.objects.filter(pk__in=[s.pk for s in deleted]).update(deleted_at=timezone.now())
    data = [
        *many(300),
        *many(200, start=300, first_row=302),
        *many(500, start=500, first_row=502),
    ]
    for row in data[:300]:
        row.values["grade"] = 3  # type: ignore[index]

    # when
    with CaptureQueriesContext(connection) as captured:
        result = students_import_rows(
            alpha.id, rows=data, initial_password=PASSWORD, chunk_size=250
        )

    # then
    assert result.counts() == {
        "created": 500,
        "restored": 200,
        "updated": 300,
        "unchanged": 0,
        "failed": 0,
    }
    assert len(captured) <= PER_IMPORT + PER_CHUNK * 4
    assert statements(captured, "UPDATE") <= 2 * 4


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


@pytest.mark.slow
def test_the_batch_lookup_uses_the_partial_key_indexes_on_100k_students(alpha: Tenant) -> None:
    # given 120,000 students over 6 tenants, 5 % of them soft-deleted, with fresh statistics
    tenants = [alpha, *Tenant.objects.bulk_create(Tenant(code=f"t{i}", name="t") for i in range(5))]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO students_student
                (tenant_id, name, parent_phone, ps_number, school_type, high_school,
                 middle_school, high_school_class, major, memo, gender, deleted_at,
                 created_at, updated_at)
            SELECT t, '학생' || g, '0109' || lpad(g::text, 7, '0'), lpad(g::text, 6, '0'),
                   '', '', '', '', '', '', '', CASE WHEN g %% 20 = 0 THEN now() END, now(), now()
              FROM unnest(%s::bigint[]) AS t, generate_series(1, 20000) AS g
            """,
            [[t.id for t in tenants]],
        )
        cursor.execute("ANALYZE students_student")
    # a file of 500 rows, 2/3 of them stored, some of those soft-deleted
    keys = [(f"학생{g}", f"0109{g:07d}") for g in range(1, 334)]
    keys += [(f"신입{g}", f"0108{g:07d}") for g in range(1, 168)]

    # when
    plan = repository.match_plan(alpha.id, keys=keys)
    matches = repository.students_matching(alpha.id, keys=keys)

    # then both branches probe their partial index; nothing scans the table
    nodes = plan_nodes(plan)
    used = {n.get("Index Name") for n in nodes if n.get("Relation Name") == "students_student"}
    assert used == {"students_active_key_uniq", "students_deleted_key_idx"}, used
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"]
    assert len(matches) == 333
    assert sum(1 for m in matches if m.deleted_at is not None) == 333 // 20
