"""The Excel import as a job: multipart POST, checks before queueing, S3, an AI worker in a
thread, the result in the record, and the failures workbook (PROTOCOL.md §5, ADR 0102)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from openpyxl import load_workbook

from domains.common.aws import s3_client
from domains.jobs.dispatch import QueueKind
from domains.jobs.models import Job
from domains.jobs.uploads import imports_bucket_ensure, upload_put
from domains.students.models import Student
from tests.support.members import Member
from tests.support.workbooks import large_xlsx_bytes, truncated, xlsx_bytes
from tests.support.workers import (
    ThreadWorker,
    client_for,
    job_row,
    queue_bodies,
    queue_counts,
    wait_for,
)
from workers.config import queue_config
from workers.handlers.excel_import import ExcelImportHandler
from workers.runner import Worker

pytestmark = pytest.mark.django_db(transaction=True)

AI = QueueKind.AI
PASSWORD = "first-login-2025"
ROWS = [
    ("김민준", "01012345678", None, "대치중", 2, "남", None),
    ("이서연", "01023456789", None, "대치중", 3, "여", None),
    ("박지후", "01034567890", None, "역삼중", 1, "남", None),
]


@pytest.fixture(autouse=True)
def bucket(fresh_queues: None) -> None:
    """moto is reset for every test (fresh_queues); the uploads bucket comes back here."""
    imports_bucket_ensure()


@pytest.fixture
def start_ai_worker() -> Iterator[Callable[[], ThreadWorker]]:
    started: list[ThreadWorker] = []

    def _start() -> ThreadWorker:
        config = replace(
            queue_config(AI),
            visibility_timeout=6,
            lease_seconds=5,
            heartbeat_interval=1.0,
            max_runtime=60,
            max_visibility=120,
        )
        worker = Worker(
            AI,
            handlers={"excel_import": ExcelImportHandler()},
            config=config,
            wait_seconds=1,
            grace=5,
            retry_delay=0,
            tick=0.1,
            dlq_sweep_interval=0,
            republish_interval=0.2,
        )
        holder = ThreadWorker(worker=worker, thread=threading.Thread(target=lambda: None))

        def _run() -> None:
            holder.exit_code = worker.run()

        holder.thread = threading.Thread(target=_run, name="test-ai-worker", daemon=True)
        holder.thread.start()
        started.append(holder)
        return holder

    yield _start
    for holder in started:
        holder.stop()


def post_import(
    member: Member,
    data: bytes,
    *,
    name: str = "students.xlsx",
    password: str = PASSWORD,
    dry_run: bool | None = None,
) -> Any:
    form: dict[str, Any] = {
        "job_type": "excel_import",
        "file": SimpleUploadedFile(name, data),
        "initial_password": password,
    }
    if dry_run is not None:
        form["dry_run"] = "true" if dry_run else "false"
    return client_for(member).post("/api/v1/jobs/", form, format="multipart")


def finished(job_id: str, *, timeout: float = 30) -> Job:
    wait_for(
        lambda: Job.objects.filter(job_id=job_id, status__in=["DONE", "FAILED"]).exists(),
        timeout=timeout,
    )
    return job_row(job_id)


def bucket_keys() -> list[str]:
    listing = s3_client().list_objects_v2(Bucket=settings.EXCEL_IMPORT_BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


def names(member: Member) -> list[tuple[str, str]]:
    return sorted(
        Student.objects.filter(tenant_id=member.tenant.id).values_list("name", "parent_phone")
    )


# --- the happy path ---------------------------------------------------------------------------
def test_an_uploaded_workbook_is_imported_by_the_worker_and_the_record_has_the_counts(
    alpha_staff: Member, start_ai_worker: Callable[[], ThreadWorker]
) -> None:
    # given a workbook of three students, posted by alpha's staff
    response = post_import(alpha_staff, xlsx_bytes(ROWS))
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "PENDING"
    key = f"imports/{alpha_staff.tenant.id}/{body['job_id']}.xlsx"
    assert bucket_keys() == [key]
    assert queue_counts(AI) == (1, 0)

    # when the ai worker runs the job
    start_ai_worker()
    job = finished(body["job_id"])

    # then the students exist and the record, detail and state carry the counts
    assert job.status == "DONE", job.error
    assert job.result.data["counts"]["created"] == 3
    assert job.result.data["counts"]["failed"] == 0
    assert len(names(alpha_staff)) == 3
    detail = client_for(alpha_staff).get(body["detail_url"]).json()
    assert detail["result"]["counts"]["created"] == 3
    assert detail["failures_url"] is None
    state = client_for(alpha_staff).get(body["progress_url"]).json()
    assert state["status"] == "DONE"
    assert state["result"]["counts"]["created"] == 3


def test_a_dry_run_classifies_and_writes_nothing(
    alpha_staff: Member, start_ai_worker: Callable[[], ThreadWorker]
) -> None:
    # given a workbook posted as a dry run
    response = post_import(alpha_staff, xlsx_bytes(ROWS), dry_run=True)
    assert response.status_code == 202, response.json()

    # when the ai worker runs the job
    start_ai_worker()
    job = finished(response.json()["job_id"])

    # then it counts the students and creates none
    assert job.status == "DONE", job.error
    assert job.result.data["dry_run"] is True
    assert job.result.data["counts"]["created"] == 3
    assert names(alpha_staff) == []


def test_the_initial_password_is_stored_only_as_one_hash(alpha_staff: Member) -> None:
    # given an import posted with an initial password
    response = post_import(alpha_staff, xlsx_bytes(ROWS))
    assert response.status_code == 202

    # when/then only its hash is in the job's payload, and the message carries ids only
    job = job_row(response.json()["job_id"])
    assert set(job.payload) == {
        "object_key",
        "filename",
        "size",
        "sha256",
        "dry_run",
        "initial_password_hash",
    }
    assert check_password(PASSWORD, job.payload["initial_password_hash"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload::text FROM jobs_job WHERE job_id = %s", [job.job_id])
        assert PASSWORD not in cursor.fetchone()[0]
    messages = queue_bodies(AI)
    assert len(messages) == 1
    assert PASSWORD not in json.dumps(messages[0])
    assert set(messages[0]) <= {"job_id", "tenant_id", "request_id"}


# --- refused before queueing ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("text_named_xlsx", "file"),
        ("csv", "file"),
        ("corrupt", "file"),
        ("too_big", "file"),
        ("too_many_rows", "file"),
        ("short_password", "initial_password"),
        ("no_file", "file"),
    ],
)
def test_a_bad_upload_is_refused_and_nothing_is_stored_or_queued(
    alpha_staff: Member, settings: Any, case: str, field: str
) -> None:
    # given an upload that is bad in the parametrized way
    data, name, password = xlsx_bytes(ROWS), "students.xlsx", PASSWORD
    if case == "text_named_xlsx":
        data = "이름,전화번호\n김민준,01012345678\n".encode()
    elif case == "csv":
        name = "students.csv"
    elif case == "corrupt":
        data = truncated(data)
    elif case == "too_big":
        settings.EXCEL_IMPORT_MAX_BYTES = len(data) - 1
    elif case == "too_many_rows":
        settings.EXCEL_IMPORT_MAX_ROWS = 20
        data = large_xlsx_bytes(21)
    elif case == "short_password":
        password = "1234567"

    # when it is posted
    if case == "no_file":
        response = client_for(alpha_staff).post(
            "/api/v1/jobs/",
            {"job_type": "excel_import", "payload": json.dumps({"initial_password": PASSWORD})},
            format="multipart",
        )
    else:
        response = post_import(alpha_staff, data, name=name, password=password)

    # then it is refused, naming the field, and nothing is stored, queued or created
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert Job.objects.count() == 0
    assert queue_counts(AI) == (0, 0)
    assert bucket_keys() == []


def test_the_row_limit_admits_exactly_the_limit(alpha_staff: Member, settings: Any) -> None:
    # given a row limit of 20
    settings.EXCEL_IMPORT_MAX_ROWS = 20

    # when/then a workbook of exactly 20 rows is accepted
    assert post_import(alpha_staff, large_xlsx_bytes(20)).status_code == 202


def test_a_short_password_gets_the_students_service_message(alpha_staff: Member) -> None:
    # given an initial password of five characters
    # when the import is posted
    response = post_import(alpha_staff, xlsx_bytes(ROWS), password="short")

    # then the error is the students service's message
    assert response.json()["fields"]["initial_password"] == [
        "The initial password must be at least 8 characters long."
    ]


def test_a_student_may_not_start_an_import(alpha_student: Member) -> None:
    # given a student of alpha
    # when they post an import
    response = post_import(alpha_student, xlsx_bytes(ROWS))

    # then it is forbidden, and nothing is created or stored
    assert response.status_code == 403
    assert Job.objects.count() == 0
    assert bucket_keys() == []


# --- in the worker ----------------------------------------------------------------------------
def test_a_file_refused_by_the_importer_fails_the_job_with_its_message(
    alpha_staff: Member, start_ai_worker: Callable[[], ThreadWorker]
) -> None:
    # given an accepted import whose stored object is then damaged
    response = post_import(alpha_staff, xlsx_bytes(ROWS))
    job_id = response.json()["job_id"]
    # The stored object is damaged after the API checked it.
    upload_put(job_row(job_id).payload["object_key"], b"PK\x03\x04 not a zip")

    # when the ai worker runs the job
    start_ai_worker()
    job = finished(job_id)

    # then it fails at once with the importer's message
    assert job.status == "FAILED"
    assert job.attempt == 1
    assert "엑셀" in job.error or "Excel" in job.error


def test_a_second_tenant_importing_the_same_students_leaves_the_first_untouched(
    alpha_staff: Member, beta_staff: Member, start_ai_worker: Callable[[], ThreadWorker]
) -> None:
    # given the same workbook imported by alpha first
    data = xlsx_bytes(ROWS)
    first = post_import(alpha_staff, data).json()
    start_ai_worker()
    assert finished(first["job_id"]).status == "DONE"
    alpha_before = list(
        Student.objects.filter(tenant_id=alpha_staff.tenant.id).order_by("pk").values()
    )

    # when beta imports it
    second = post_import(beta_staff, data).json()
    job = finished(second["job_id"])

    # then beta gets its own students and alpha's rows are unchanged
    assert job.status == "DONE", job.error
    assert job.result.data["counts"]["created"] == 3
    alpha_after = list(
        Student.objects.filter(tenant_id=alpha_staff.tenant.id).order_by("pk").values()
    )
    assert alpha_after == alpha_before
    assert names(beta_staff) == names(alpha_staff)


# --- failures ---------------------------------------------------------------------------------
def test_failed_rows_download_as_xlsx_for_the_tenant_only(
    alpha_staff: Member, beta_staff: Member, start_ai_worker: Callable[[], ThreadWorker]
) -> None:
    # given an import with one bad row, run to DONE
    rows = [*ROWS, ("최하늘", "12", None, "대치중", 2, "여", None)]
    body = post_import(alpha_staff, xlsx_bytes(rows)).json()
    start_ai_worker()
    job = finished(body["job_id"])
    assert job.status == "DONE", job.error
    assert job.result.data["counts"]["failed"] == 1

    # when the failures workbook is fetched by alpha
    detail = client_for(alpha_staff).get(body["detail_url"]).json()
    url = detail["failures_url"]
    assert url == f"/api/v1/jobs/{body['job_id']}/failures.xlsx"
    response = client_for(alpha_staff).get(url)

    # then it lists the bad row, and beta gets 404
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert table[0][0] == "행 번호"
    assert len(table) == 2
    assert table[1][0] == 5
    assert table[1][1] == "최하늘"
    assert client_for(beta_staff).get(url).status_code == 404


def test_failures_xlsx_is_404_without_failures_or_for_other_jobs(
    alpha_staff: Member, start_ai_worker: Callable[[], ThreadWorker]
) -> None:
    # given a finished import without failures, and a messaging job
    body = post_import(alpha_staff, xlsx_bytes(ROWS)).json()
    start_ai_worker()
    assert finished(body["job_id"]).status == "DONE"

    # when/then the failures workbook is 404 for both, and the messaging job has no link
    url = f"/api/v1/jobs/{body['job_id']}/failures.xlsx"
    assert client_for(alpha_staff).get(url).status_code == 404
    payload = {"subject": "s", "body": "b", "recipients": ["a@example.com"]}
    other = client_for(alpha_staff).post(
        "/api/v1/jobs/", {"job_type": "messaging.send", "payload": payload}, format="json"
    )
    assert other.status_code == 202
    detail = client_for(alpha_staff).get(other.json()["detail_url"]).json()
    assert detail["failures_url"] is None
    url = f"/api/v1/jobs/{other.json()['job_id']}/failures.xlsx"
    assert client_for(alpha_staff).get(url).status_code == 404


def test_a_big_failure_list_stays_in_the_database_and_the_detail_has_it_all(
    alpha_staff: Member, start_ai_worker: Callable[[], ThreadWorker]
) -> None:
    # given an import of 200 bad rows, run to DONE
    rows = [(f"학생{i:04d}", "12", None, "대치중", 2, "남", None) for i in range(200)]
    body = post_import(alpha_staff, xlsx_bytes(rows)).json()
    start_ai_worker()
    job = finished(body["job_id"])
    assert job.status == "DONE", job.error
    assert len(json.dumps(job.result.data, ensure_ascii=False).encode()) > 10_240

    # when its state and detail are fetched
    state = client_for(alpha_staff).get(body["progress_url"]).json()

    # then the result is left out of Redis, and the detail has every failed row
    assert state["status"] == "DONE"
    assert state["result_in_db"] is True
    assert state.get("result") is None
    detail = client_for(alpha_staff).get(body["detail_url"]).json()
    assert detail["result"]["counts"]["failed"] == 200
    assert len(detail["result"]["failed_rows"]) == 200
    assert detail["failures_url"]
