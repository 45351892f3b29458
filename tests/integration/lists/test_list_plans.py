"""EXPLAIN of the list queries on 100,000 jobs and 100,000 videos over four tenants.

The plans are PostgreSQL's own choice on analysed tables, read as JSON. Each filter
combination must use the index named for it and never scan the table: the seed's
``(tenant, status)`` index serves a rare status (a dashboard's running items), the seed's
``(session_id, status)`` index a session's videos, the created-by foreign key index a teacher's
own items, and ``(tenant, created_at, id)`` (migration 0003) the unfiltered newest-first order,
on the first page and on a deep cursor page alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from domains.common.cursors import Cursor
from domains.jobs import repository as jobs
from domains.videos import repository as videos
from tests.integration.lists.seed import ROWS_PER_TENANT, TENANTS, Seeded

JOBS_BY_OWNER = "jobs_job_created_by_id"  # Django's foreign key index, less its hash suffix
VIDEOS_BY_OWNER = "videos_video_created_by_id"


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def plan_of(query: Any) -> list[dict[str, Any]]:
    return list(nodes(json.loads(query.explain(format="json"))[0]["Plan"]))


def indexes_in(plan: list[dict[str, Any]]) -> set[str]:
    """The indexes the plan reads; Django's hashed names without their hash."""
    return {
        re.sub(r"_[0-9a-f]{8}$", "", node["Index Name"]) for node in plan if "Index Name" in node
    }


def seq_scans_in(plan: list[dict[str, Any]]) -> list[str]:
    return [node["Relation Name"] for node in plan if node["Node Type"] == "Seq Scan"]


def deep_cursor(data: Seeded, table: str) -> Cursor:
    """The key of the first tenant's row 15,000 rows from its newest."""
    model = jobs.Job if table == "jobs" else videos.Video
    row = (
        model.objects.filter(tenant_id=data.tenant_ids[0])
        .order_by("-created_at", "-id")
        .values_list("created_at", "id")[15_000]
    )
    return Cursor(created_at=row[0], id=row[1])


# Filter combination -> the indexes its plan must read (all of them, and no other).
JOB_CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "staff, newest first": ({}, {"job_tenant_created_idx"}),
    "staff, one common status": ({"statuses": ("DONE",)}, {"job_tenant_created_idx"}),
    "staff, one job type": ({"job_type": "excel_import"}, {"job_tenant_created_idx"}),
    "staff, running": ({"statuses": ("PROCESSING",)}, {"job_tenant_status_idx"}),
    "staff, pending or running": (
        {"statuses": ("PENDING", "PROCESSING")},
        {"job_tenant_status_idx"},
    ),
    "staff, running of one type": (
        {"statuses": ("PROCESSING",), "job_type": "excel_import"},
        {"job_tenant_status_idx"},
    ),
    "teacher, own": ({"owner": True}, {JOBS_BY_OWNER}),
    "teacher, own running": (
        {"owner": True, "statuses": ("PROCESSING",)},
        {JOBS_BY_OWNER, "job_tenant_status_idx"},
    ),
}

VIDEO_CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "staff, newest first": ({}, {"video_tenant_created_idx"}),
    "staff, one session": ({"session": True}, {"video_session_status_idx"}),
    "staff, one session's ready": (
        {"session": True, "statuses": ("READY",)},
        {"video_session_status_idx"},
    ),
    "staff, encoding": ({"statuses": ("PROCESSING",)}, {"video_tenant_status_idx"}),
    "teacher, own": ({"owner": True}, {VIDEOS_BY_OWNER}),
    "teacher, own in one session": (
        {"owner": True, "session": True},
        {VIDEOS_BY_OWNER, "video_session_status_idx"},
    ),
}


def test_the_data_is_large_and_spread_over_tenants(plan_data: Seeded) -> None:
    # given the seeded tables
    # when their rows are counted per tenant
    counts = [
        jobs.Job.objects.filter(tenant_id=tenant_id).count() for tenant_id in plan_data.tenant_ids
    ]

    # then there are 100,000 jobs, evenly over four tenants
    assert counts == [ROWS_PER_TENANT] * TENANTS
    assert sum(counts) >= 100_000


@pytest.mark.parametrize("deep", [False, True], ids=["first page", "deep cursor page"])
@pytest.mark.parametrize("case", list(JOB_CASES))
def test_a_job_list_query_uses_its_index(
    plan_data: Seeded, db: None, case: str, deep: bool
) -> None:
    # given a filter combination of the job list, on the first page or 15,000 rows down
    filters, expected = JOB_CASES[case]
    query = jobs.jobs_page_query(
        plan_data.tenant_ids[0],
        owner_id=plan_data.owner_id if filters.get("owner") else None,
        statuses=filters.get("statuses", ()),
        job_type=filters.get("job_type"),
        after=deep_cursor(plan_data, "jobs") if deep else None,
        limit=21,
    )

    # when PostgreSQL plans it
    plan = plan_of(query)

    # then no node scans the table, and exactly the expected indexes are read
    assert seq_scans_in(plan) == []
    assert indexes_in(plan) == expected, plan


@pytest.mark.parametrize("deep", [False, True], ids=["first page", "deep cursor page"])
@pytest.mark.parametrize("case", list(VIDEO_CASES))
def test_a_video_list_query_uses_its_index(
    plan_data: Seeded, db: None, case: str, deep: bool
) -> None:
    # given a filter combination of the video list, on the first page or 15,000 rows down
    filters, expected = VIDEO_CASES[case]
    query = videos.videos_page_query(
        plan_data.tenant_ids[0],
        owner_id=plan_data.owner_id if filters.get("owner") else None,
        session_id=plan_data.session_id if filters.get("session") else None,
        statuses=filters.get("statuses", ()),
        after=deep_cursor(plan_data, "videos") if deep else None,
        limit=21,
    )

    # when PostgreSQL plans it
    plan = plan_of(query)

    # then no node scans the table, and exactly the expected indexes are read
    assert seq_scans_in(plan) == []
    assert indexes_in(plan) == expected, plan


def test_the_newest_first_page_reads_no_more_rows_than_it_shows(
    plan_data: Seeded, db: None
) -> None:
    # given the unfiltered staff list of one tenant of 25,000 jobs
    query = jobs.jobs_page_query(plan_data.tenant_ids[0], owner_id=None, limit=21)

    # when it is run under EXPLAIN ANALYZE
    plan = list(nodes(json.loads(query.explain(format="json", analyze=True))[0]["Plan"]))

    # then the index is walked in order and stops at the page: no sort, 21 rows read
    assert all(node["Node Type"] != "Sort" for node in plan)
    scan = next(node for node in plan if node.get("Index Name") == "job_tenant_created_idx")
    assert scan["Scan Direction"] == "Backward"
    assert scan["Actual Rows"] == 21
