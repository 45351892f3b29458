"""The Excel upload under hostile or repeated input: workbook bombs (audit F7) and
Idempotency-Key replays (audit F21), through the real API, PostgreSQL and moto's S3/SQS."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.files.uploadedfile import SimpleUploadedFile

from domains.common.aws import s3_client
from domains.jobs.dispatch import QueueKind
from domains.jobs.models import Job
from domains.jobs.uploads import imports_bucket_ensure
from tests.conftest import Member
from tests.integration.workers.conftest import client_for, queue_counts
from tests.unit.students.workbooks import ParseSpy, bomb_xlsx_bytes, xlsx_bytes

pytestmark = pytest.mark.django_db(transaction=True)

AI = QueueKind.AI
PASSWORD = "first-login-2025"
ROWS = [
    ("김민준", "01012345678", None, "대치중", 2, "남", None),
    ("이서연", "01023456789", None, "대치중", 3, "여", None),
]


@pytest.fixture(autouse=True)
def bucket(fresh_queues: None) -> None:
    imports_bucket_ensure()


def post_import(
    member: Member,
    data: bytes,
    *,
    key: str = "",
    name: str = "students.xlsx",
    password: str = PASSWORD,
    dry_run: bool = False,
    language: str = "en",
) -> Any:
    form = {
        "job_type": "excel_import",
        "file": SimpleUploadedFile(name, data),
        "initial_password": password,
        "dry_run": "true" if dry_run else "false",
    }
    headers = {"Accept-Language": language}
    if key:
        headers["Idempotency-Key"] = key
    return client_for(member).post("/api/v1/jobs/", form, format="multipart", headers=headers)


def bucket_keys() -> list[str]:
    listing = s3_client().list_objects_v2(Bucket=settings.EXCEL_IMPORT_BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


# --- workbook bombs -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "at most 40 MB"), ("ko", "최대 40MB")],
)
def test_F7_a_600_kb_bomb_gets_a_400_before_the_workbook_is_parsed(
    alpha_staff: Member, monkeypatch: pytest.MonkeyPatch, language: str, expected: str
) -> None:
    # given the audit's probe: ~200 MB of XML in a ~600 KB upload
    data = bomb_xlsx_bytes()
    spy = ParseSpy().install(monkeypatch)

    # when
    response = post_import(alpha_staff, data, language=language)

    # then refused in the caller's language, nothing stored or queued, openpyxl never ran
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert expected in body["fields"]["file"][0]
    assert spy.calls == 0
    assert Job.objects.count() == 0
    assert queue_counts(AI) == (0, 0)
    assert bucket_keys() == []


# --- Idempotency-Key replays --------------------------------------------------------------------
def test_F21_an_excel_replay_with_another_initial_password_is_a_conflict(
    alpha_staff: Member,
) -> None:
    # given an import accepted under a key
    data = xlsx_bytes(ROWS)
    first = post_import(alpha_staff, data, key="import-1")
    assert first.status_code == 202, first.content

    # when the same file comes again under the key with another initial password
    again = post_import(alpha_staff, data, key="import-1", password="another-password-9")

    # then 409; the one job keeps the first password, stored only as its hash
    assert again.status_code == 409, again.content
    assert again.json()["code"] == "conflict"
    job = Job.objects.get()
    assert str(job.job_id) == first.json()["job_id"]
    stored = job.payload["initial_password_hash"]
    assert check_password(PASSWORD, stored)
    assert PASSWORD not in str(job.payload)
    assert "another-password-9" not in str(job.payload)
    assert len(bucket_keys()) == 1
    assert queue_counts(AI) == (1, 0)


def test_F21_an_identical_excel_replay_returns_the_first_job_without_parsing_again(
    alpha_staff: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an import accepted under a key, its workbook parsed once
    spy = ParseSpy().install(monkeypatch)
    data = xlsx_bytes(ROWS)
    first = post_import(alpha_staff, data, key="import-1")
    assert first.status_code == 202, first.content
    assert spy.calls == 1

    # when the very same request comes again
    again = post_import(alpha_staff, data, key="import-1")

    # then the same job, and the key was looked up before any parse
    assert again.status_code == 202, again.content
    assert again.json()["job_id"] == first.json()["job_id"]
    assert spy.calls == 1
    assert Job.objects.count() == 1
    assert queue_counts(AI) == (1, 0)


def test_F21_a_replayed_bomb_is_refused_by_the_key_without_being_read(
    alpha_staff: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an import accepted under a key
    assert post_import(alpha_staff, xlsx_bytes(ROWS), key="import-1").status_code == 202
    spy = ParseSpy().install(monkeypatch)

    # when a bomb arrives under the same key
    again = post_import(alpha_staff, bomb_xlsx_bytes(), key="import-1")

    # then it is a different request, told apart by its checksum alone
    assert again.status_code == 409, again.content
    assert spy.calls == 0


@pytest.mark.parametrize("change", ["file", "name", "dry_run"])
def test_an_excel_replay_with_another_file_name_or_mode_is_a_conflict(
    alpha_staff: Member, change: str
) -> None:
    # given
    data = xlsx_bytes(ROWS)
    assert post_import(alpha_staff, data, key="import-1").status_code == 202

    # when
    if change == "file":
        again = post_import(alpha_staff, xlsx_bytes(ROWS[:1]), key="import-1")
    elif change == "name":
        again = post_import(alpha_staff, data, key="import-1", name="other.xlsx")
    else:
        again = post_import(alpha_staff, data, key="import-1", dry_run=True)

    # then
    assert again.status_code == 409, again.content
    assert Job.objects.count() == 1


def test_the_same_key_in_another_tenant_is_another_import(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given alpha's import under a key
    data = xlsx_bytes(ROWS)
    alpha = post_import(alpha_staff, data, key="import-1")

    # when beta uses the same key, file and a different password
    beta = post_import(beta_staff, data, key="import-1", password="beta-password-77")

    # then beta gets its own job, neither conflicting with nor revealing alpha's
    assert (alpha.status_code, beta.status_code) == (202, 202)
    assert alpha.json()["job_id"] != beta.json()["job_id"]
    jobs = {job.tenant_id: job for job in Job.objects.all()}
    assert set(jobs) == {alpha_staff.tenant.id, beta_staff.tenant.id}
    assert check_password(
        "beta-password-77", jobs[beta_staff.tenant.id].payload["initial_password_hash"]
    )
