"""GET /api/v1/jobs/: the tenant's jobs, newest first, a keyset cursor page at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from domains.common.cursors import Cursor
from domains.jobs.models import Job, JobStatus
from tests.support.lists import T0, MakeJob
from tests.support.members import Member

URL = "/api/v1/jobs/"


def ids(body: dict[str, Any]) -> list[str]:
    return [row["job_id"] for row in body["results"]]


def job_ids(*jobs: Job) -> list[str]:
    return [str(job.job_id) for job in jobs]


def all_pages(client: APIClient, query: str) -> list[list[str]]:
    pages = []
    url: str | None = f"{URL}?{query}"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.json()
        pages.append(ids(response.json()))
        url = response.json()["next"]
    return pages


def test_pages_run_newest_first_and_show_every_job_once(
    alpha_staff: Member, make_job: MakeJob
) -> None:
    # given five jobs a minute apart
    jobs = [make_job(alpha_staff, minutes=n) for n in range(5)]
    client = alpha_staff.client()

    # when the staff member follows `next` with two rows a page
    pages = all_pages(client, "page_size=2")

    # then the pages hold every job once, newest first, and the last page ends the list
    assert pages == [job_ids(jobs[4], jobs[3]), job_ids(jobs[2], jobs[1]), job_ids(jobs[0])]


def test_a_row_carries_what_a_client_needs_to_watch_it(
    alpha_staff: Member, make_job: MakeJob
) -> None:
    # given one running Excel import
    job = make_job(alpha_staff, status=JobStatus.PROCESSING, job_type="excel_import")

    # when the list is read
    body = alpha_staff.client().get(URL).json()

    # then its row names the topic, the progress and detail URLs, and nothing else
    assert body == {
        "results": [
            {
                "job_id": str(job.job_id),
                "topic": f"job:{job.job_id}",
                "job_type": "excel_import",
                "status": "PROCESSING",
                "created_at": body["results"][0]["created_at"],
                "started_at": None,
                "finished_at": None,
                "progress_url": f"/api/v1/jobs/{job.job_id}/progress/",
                "detail_url": f"/api/v1/jobs/{job.job_id}/",
            }
        ],
        "next_cursor": None,
        "next": None,
    }
    assert datetime.fromisoformat(body["results"][0]["created_at"]) == T0


def test_a_cursor_continues_where_its_page_ended_whatever_was_created_since(
    alpha_staff: Member, make_job: MakeJob
) -> None:
    # given five jobs and the first page of two
    jobs = [make_job(alpha_staff, minutes=n) for n in range(5)]
    client = alpha_staff.client()
    first = client.get(f"{URL}?page_size=2").json()

    # when three newer jobs are created before the next page is read
    newer = [make_job(alpha_staff, minutes=10 + n) for n in range(3)]
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()

    # then the old pages go on without a repeat or a gap, and a fresh first page shows the new
    assert ids(second) == job_ids(jobs[2], jobs[1])
    assert ids(third) == job_ids(jobs[0])
    assert third["next_cursor"] is None
    assert ids(client.get(f"{URL}?page_size=3").json()) == job_ids(*reversed(newer))


def test_jobs_created_in_the_same_microsecond_are_ordered_by_id(
    alpha_staff: Member, make_job: MakeJob
) -> None:
    # given three jobs with the very same created_at
    jobs = [make_job(alpha_staff, created_at=T0) for _ in range(3)]
    client = alpha_staff.client()

    # when they are read one a page
    pages = all_pages(client, "page_size=1")

    # then each comes once, the later row first
    assert pages == [[str(job.job_id)] for job in sorted(jobs, key=lambda j: -j.pk)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=FAILED", ["failed_import"]),
        ("status=PENDING&status=PROCESSING", ["running_send", "pending_import"]),
        ("job_type=excel_import", ["failed_import", "pending_import"]),
        ("job_type=excel_import&status=PENDING", ["pending_import"]),
        ("status=DONE", []),
    ],
)
def test_filters_narrow_the_list(
    alpha_staff: Member, make_job: MakeJob, query: str, expected: list[str]
) -> None:
    # given jobs of both types in three statuses
    made = {
        "pending_import": make_job(
            alpha_staff, minutes=0, status=JobStatus.PENDING, job_type="excel_import"
        ),
        "running_send": make_job(alpha_staff, minutes=1, status=JobStatus.PROCESSING),
        "failed_import": make_job(
            alpha_staff, minutes=2, status=JobStatus.FAILED, job_type="excel_import"
        ),
    }

    # when the list is read with the filters
    response = alpha_staff.client().get(f"{URL}?{query}")

    # then only the matching jobs are listed, newest first
    assert response.status_code == 200
    assert ids(response.json()) == job_ids(*(made[name] for name in expected))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=RUNNING", "status"),
        ("status=done", "status"),
        ("job_type=video_encode_nope", "job_type"),
        ("cursor=not-a-cursor", "cursor"),
        ("status=", "status"),
        ("job_type=", "job_type"),
        ("cursor=", "cursor"),
        ("cursor=MTc2NDU0OTQwMDEyMzQ1Ni40Mg!", "cursor"),
        ("cursor=MTIz", "cursor"),
        (f"cursor={'A' * 65}", "cursor"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=ten", "page_size"),
        ("session_id=4", "session_id"),
    ],
)
def test_a_bad_filter_is_refused_with_the_parameter_named(
    alpha_staff: Member, make_job: MakeJob, query: str, field: str
) -> None:
    # given a job
    make_job(alpha_staff)

    # when the list is asked for with a value that is not valid
    response = alpha_staff.client().get(f"{URL}?{query}")

    # then it is a 400 in the error shape, naming the parameter
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {field}


def test_a_cursor_from_another_list_is_only_a_position(
    alpha_staff: Member, make_job: MakeJob
) -> None:
    # given two jobs and a well-formed cursor between them, made by hand
    older = make_job(alpha_staff, minutes=0)
    make_job(alpha_staff, minutes=5)
    cursor = Cursor(created_at=T0 + timedelta(minutes=1), id=2**62).encode()

    # when the list is read from it
    body = alpha_staff.client().get(f"{URL}?cursor={cursor}").json()

    # then it lists what is older than the position, nothing else
    assert ids(body) == job_ids(older)


@pytest.mark.parametrize(
    ("viewer", "sees"),
    [
        ("alpha_staff", ["teacher_2", "teacher", "staff"]),
        ("alpha_admin", ["teacher_2", "teacher", "staff"]),
        ("alpha_teacher", ["teacher"]),
        ("alpha_student", []),
    ],
)
def test_staff_and_admin_see_the_tenant_others_their_own(
    request: pytest.FixtureRequest,
    alpha_staff: Member,
    alpha_teacher: Member,
    alpha_teacher_2: Member,
    make_job: MakeJob,
    viewer: str,
    sees: list[str],
) -> None:
    # given jobs of staff and two teachers
    made = {
        "staff": make_job(alpha_staff, minutes=0),
        "teacher": make_job(alpha_teacher, minutes=1),
        "teacher_2": make_job(alpha_teacher_2, minutes=2),
    }
    member: Member = request.getfixturevalue(viewer)

    # when the viewer reads the list
    body = member.client().get(URL).json()

    # then staff and admin see every job, the others only their own
    assert ids(body) == job_ids(*(made[name] for name in sees))


def test_a_second_tenant_sees_nothing_of_the_first(
    alpha_staff: Member, beta_staff: Member, make_job: MakeJob
) -> None:
    # given alpha's jobs, a cursor into alpha's list, and one job of beta
    [make_job(alpha_staff, minutes=n) for n in range(3)]
    beta_job = make_job(beta_staff, minutes=-10)
    alpha_cursor = alpha_staff.client().get(f"{URL}?page_size=1").json()["next_cursor"]
    client = beta_staff.client()

    # when beta's staff reads the list, from the start and from alpha's cursor
    from_start = client.get(URL).json()
    from_alpha_cursor = client.get(f"{URL}?cursor={alpha_cursor}").json()

    # then beta sees only beta's job
    assert ids(from_start) == job_ids(beta_job)
    assert ids(from_alpha_cursor) == job_ids(beta_job)


def test_an_anonymous_request_is_refused(api: APIClient, make_job: MakeJob) -> None:
    # given an anonymous client
    # when the list is asked for without a token
    response = api.get(URL)

    # then it is a 401 in the error shape
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("rows", [3, 60])
def test_every_page_costs_one_query(
    alpha_staff: Member,
    make_job: MakeJob,
    django_assert_num_queries: Any,
    rows: int,
) -> None:
    # given a few or many jobs
    for n in range(rows):
        make_job(alpha_staff, minutes=n)
    client = alpha_staff.client()
    first = client.get(f"{URL}?page_size=2").json()

    # when the first page and a later one are read
    # then each is one query, however many rows the tenant has
    with django_assert_num_queries(1):
        client.get(f"{URL}?page_size=50")
    with django_assert_num_queries(1):
        client.get(first["next"])


def test_the_query_reads_only_the_columns_a_row_shows(
    alpha_staff: Member, make_job: MakeJob
) -> None:
    # given a failed job with a payload and an error
    make_job(alpha_staff, status=JobStatus.FAILED)
    client = alpha_staff.client()
    cursor = Cursor(created_at=T0 + timedelta(days=1), id=2**62).encode()

    # when a page is read from a cursor
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{URL}?cursor={cursor}&status=FAILED")

    # then the one query selects none of the large or private columns, and joins nothing
    assert response.status_code == 200
    assert len(queries.captured_queries) == 1
    sql = queries.captured_queries[0]["sql"]
    selected = sql.split(" FROM ")[0]
    for column in ("payload", "error", "lease_owner", "lease_expires_at", "idempotency_key"):
        assert f'"{column}"' not in selected
    assert "JOIN" not in sql
    assert selected.count('"jobs_job".') == 7


def test_the_refusals_of_the_list_are_translated(alpha_staff: Member) -> None:
    # given a Korean-speaking client
    client = alpha_staff.client()

    # when it sends a bad cursor and a session filter
    cursor = client.get(f"{URL}?cursor=zz", HTTP_ACCEPT_LANGUAGE="ko").json()
    session = client.get(f"{URL}?session_id=1", HTTP_ACCEPT_LANGUAGE="ko").json()

    # then both messages are in Korean
    assert cursor["fields"]["cursor"] == [
        "이 목록의 커서가 아닙니다. 페이지의 next_cursor 값을 사용하세요."
    ]
    assert session["fields"]["session_id"] == [
        "작업은 세션에 속하지 않습니다. session_id로는 동영상을 필터링하세요."
    ]


def test_a_bad_status_is_named_in_a_flat_list(alpha_staff: Member) -> None:
    # given a staff member
    # when one of two statuses does not exist
    body = alpha_staff.client().get(f"{URL}?status=DONE&status=RUNNING").json()

    # then the answer names the bad value under `status`, as a list of messages
    assert body["fields"] == {"status": ['"RUNNING" is not a valid choice.']}
