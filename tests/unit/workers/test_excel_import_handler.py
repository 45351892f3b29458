"""The excel_import handler's progress adapter, and how importer errors steer the job."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domains.jobs.dispatch import QueueKind
from domains.students import messages as m
from domains.students.errors import StudentsImportBusy, StudentsImportRejected
from workers.base import JobRun, LeaseLost, PermanentError
from workers.handlers import excel_import
from workers.handlers.excel_import import ExcelImportHandler, ImportBusyRetry, ProgressAdapter


class FakeProgress:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def update(self, **fields: Any) -> None:
        self.calls.append(fields)
        if self.error is not None:
            raise self.error


def job() -> JobRun:
    return JobRun(
        job_id=uuid.uuid4(),
        tenant_id=1,
        job_type="excel_import",
        payload={"object_key": "imports/1/x.xlsx", "initial_password_hash": "h", "dry_run": False},
        attempt=1,
        owner_id=1,
        kind=QueueKind.AI,
        receive_count=1,
    )


def test_import_progress_becomes_a_job_update_with_the_korean_step_name() -> None:
    # given a job's progress
    progress = FakeProgress()

    # when the import reports its writing step
    ProgressAdapter(progress)("write", 3, 3, 65.0, 4.2)  # type: ignore[arg-type]

    # then the job update carries the Korean step name and whole seconds left
    assert progress.calls == [
        {
            "percent": 65.0,
            "step": "write",
            "step_index": 3,
            "step_total": 3,
            "step_name_display": "학생 등록",
            "remaining_seconds": 5,
        }
    ]


def test_a_failing_update_is_swallowed_but_a_lost_lease_stops_the_import() -> None:
    # given job progress whose update fails, then job progress whose lease is lost
    # when/then the failure is swallowed and the lost lease stops the import
    ProgressAdapter(FakeProgress(RuntimeError("redis")))("read", 1, 3, 0.0, None)  # type: ignore[arg-type]

    with pytest.raises(LeaseLost):
        ProgressAdapter(FakeProgress(LeaseLost("gone")))("read", 1, 3, 0.0, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (StudentsImportRejected(m.CORRUPT), PermanentError),
        (StudentsImportBusy(m.IMPORT_BUSY), ImportBusyRetry),
    ],
)
def test_a_refused_file_is_permanent_and_a_busy_tenant_is_retried(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: type[Exception]
) -> None:
    # given an import service that refuses with the parametrized error
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(excel_import, "upload_get", lambda key: b"PK\x03\x04")
    monkeypatch.setattr(excel_import, "students_import_file", refuse)

    # when/then the handler raises the runner's permanent or retry error
    with pytest.raises(expected):
        ExcelImportHandler().run(job(), FakeProgress())  # type: ignore[arg-type]
