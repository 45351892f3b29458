"""``excel_import``: the uploaded .xlsx from S3 through the student importer, progress per chunk.

The payload holds the S3 key and the initial password's hash made once by the API (ADR 0102);
the importer gets the hash and never hashes again. A refused file fails the job with the
importer's message; another import of the same tenant still running is a transient error, so
the job is retried after the runner's delay.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils import translation

from domains.jobs.uploads import UploadMissing, upload_get
from domains.students.errors import StudentsImportBusy, StudentsImportRejected, TenantNotFound
from domains.students.progress import STEP_DISPLAY
from domains.students.services import students_import_file
from workers.base import JobCancelled, JobProgress, JobRun, LeaseLost, PermanentError

logger = logging.getLogger(__name__)


class ImportBusyRetry(Exception):
    """Another import of the tenant holds the lock: retried like any transient failure."""


class ProgressAdapter:
    """The importer's progress port (domains/students/progress.py) onto the job's progress.

    A failing update never fails the import, except :class:`LeaseLost` and
    :class:`JobCancelled`: then the attempt stops. The importer reports after each chunk it
    committed, so a cancel stops it between chunks and the committed ones stay.
    """

    def __init__(self, progress: JobProgress) -> None:
        self._progress = progress

    def __call__(
        self,
        step: str,
        step_index: int,
        step_total: int,
        percent: float,
        remaining_seconds: float | None,
    ) -> None:
        try:
            self._progress.update(
                percent=percent,
                step=step,
                step_index=step_index,
                step_total=step_total,
                step_name_display=STEP_DISPLAY.get(step, step),
                remaining_seconds=None
                if remaining_seconds is None
                else max(0, math.ceil(remaining_seconds)),
            )
        except (LeaseLost, JobCancelled):
            raise
        except Exception:
            logger.warning("import progress not published step=%s", step, exc_info=True)


class ExcelImportHandler:
    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        payload = job.payload
        try:
            data = upload_get(payload["object_key"])
        except UploadMissing as exc:
            raise PermanentError("The uploaded file is no longer available.") from exc
        except (BotoCoreError, ClientError):
            raise  # transient: retried
        try:
            result = students_import_file(
                job.tenant_id,
                data=data,
                initial_password_hash=payload["initial_password_hash"],
                dry_run=payload["dry_run"],
                progress=ProgressAdapter(progress),
                max_rows=settings.EXCEL_IMPORT_MAX_ROWS,
            )
        except (StudentsImportRejected, TenantNotFound) as exc:
            # The job's error is read by the academy's users: their language.
            with translation.override(settings.LANGUAGE_CODE):
                raise PermanentError(str(exc.detail)) from exc
        except StudentsImportBusy as exc:
            raise ImportBusyRetry(exc.message.en) from exc
        return result.as_dict()
