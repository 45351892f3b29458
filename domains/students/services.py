"""Student services: the Excel import.

``students_import_file`` is what the worker's excel_import handler calls with the uploaded
bytes; ``students_import_rows`` does the work for rows already read. Steps (ARCHITECTURE.md,
"Excel import"):

1. read the workbook (xlsx.py) and validate every row in Python (rows.py): bad files are
   refused before any database work, bad rows are reported and skipped;
2. under the tenant's import lock, look the keys up in one set-based statement per block and
   classify each row (plan.py) — a dry run returns here;
3. reserve the student numbers of the new rows, hash the initial password once (ADR 0102);
4. write in chunks, one transaction each, a constant number of statements per chunk; a chunk
   the database refuses is rolled back and replayed row by row, so every failure names its row
   and the other rows of the chunk still commit.

Re-running an import is safe: committed rows classify as unchanged the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.contrib.auth.hashers import identify_hasher, is_password_usable, make_password
from django.db import DataError, IntegrityError, transaction

from domains.students import messages as m
from domains.students import repository
from domains.students.errors import StudentsImportBusy, StudentsImportRejected, TenantNotFound
from domains.students.messages import Message
from domains.students.models import ACTIVE_KEY_CONSTRAINT, PS_NUMBER_CONSTRAINT
from domains.students.plan import (
    Action,
    ImportResult,
    PlannedRow,
    chunked,
    format_ps_number,
    plan_import,
    username_for,
    write_failure,
)
from domains.students.progress import ImportProgress, ProgressTracker
from domains.students.rows import RawRow, RowFailure, validate_rows
from domains.students.xlsx import (
    DEFAULT_MAX_ROWS,
    WorkbookLimits,
    WorkbookRejected,
    read_students_xlsx,
)

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 2_000
# A second import of the same tenant waits this long for the first, then is refused (ADR 0103).
DEFAULT_LOCK_WAIT_SECONDS = 2.0

Columns = Sequence[tuple[str, str]]


def workbook_limits() -> WorkbookLimits:
    """What an uploaded workbook may cost to read (settings ``EXCEL_IMPORT_MAX_*``)."""
    return WorkbookLimits(
        max_uncompressed_bytes=settings.EXCEL_IMPORT_MAX_UNCOMPRESSED_BYTES,
        max_part_bytes=settings.EXCEL_IMPORT_MAX_PART_BYTES,
        max_shared_strings=settings.EXCEL_IMPORT_MAX_SHARED_STRINGS,
    )


def students_import_file(
    tenant_id: int,
    *,
    data: bytes,
    initial_password: str = "",
    initial_password_hash: str = "",
    dry_run: bool = False,
    progress: ImportProgress | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_rows: int = DEFAULT_MAX_ROWS,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
) -> ImportResult:
    """Import the students of an uploaded .xlsx; raises StudentsImportRejected for bad files.

    Pass the initial password in plain text, or ``initial_password_hash``: an encoded hash
    (``make_password``) made once by whoever took the password (the jobs API), so the
    plain text never reaches the job's payload and the worker never hashes again.
    """
    password_hash = _check_password(initial_password, initial_password_hash)
    tracker = ProgressTracker(progress)
    tracker.report("read", 0.0)
    try:
        sheet = read_students_xlsx(data, max_rows=max_rows, limits=workbook_limits())
    except WorkbookRejected as exc:
        raise StudentsImportRejected(exc.message) from exc
    tracker.report("read", 1.0)
    return _import(
        tenant_id,
        rows=sheet.rows,
        columns=sheet.columns,
        initial_password=initial_password,
        initial_password_hash=password_hash,
        dry_run=dry_run,
        tracker=tracker,
        chunk_size=chunk_size,
        lock_wait_seconds=lock_wait_seconds,
    )


def students_import_rows(
    tenant_id: int,
    *,
    rows: Iterable[RawRow],
    initial_password: str = "",
    initial_password_hash: str = "",
    columns: Columns = (),
    dry_run: bool = False,
    progress: ImportProgress | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
) -> ImportResult:
    """Import rows already read. ``columns`` ((field, header text) in file order) lets the
    result carry the original values of failed rows for the failures workbook."""
    password_hash = _check_password(initial_password, initial_password_hash)
    return _import(
        tenant_id,
        rows=rows,
        columns=columns,
        initial_password=initial_password,
        initial_password_hash=password_hash,
        dry_run=dry_run,
        tracker=ProgressTracker(progress),
        chunk_size=chunk_size,
        lock_wait_seconds=lock_wait_seconds,
    )


def _check_password(password: str, password_hash: str) -> str:
    """The pre-made hash if one was given (checked to be a usable encoded hash), else ""."""
    if password_hash:
        if password or not is_password_usable(password_hash):
            raise ValueError("pass either initial_password or a usable initial_password_hash")
        try:
            identify_hasher(password_hash)
        except ValueError as exc:
            raise ValueError("initial_password_hash is not an encoded password hash") from exc
        return password_hash
    check_initial_password(password)
    return ""


def check_initial_password(password: str) -> None:
    """The rule of ADR 0102, for every place that takes an initial password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StudentsImportRejected(m.PASSWORD_TOO_SHORT.format(min_length=MIN_PASSWORD_LENGTH))


def _import(
    tenant_id: int,
    *,
    rows: Iterable[RawRow],
    columns: Columns,
    initial_password: str,
    initial_password_hash: str,
    dry_run: bool,
    tracker: ProgressTracker,
    chunk_size: int,
    lock_wait_seconds: float,
) -> ImportResult:
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}")
    code = repository.tenant_code(tenant_id)
    if code is None:
        raise TenantNotFound(m.TENANT_NOT_FOUND)

    tracker.report("classify", 0.0)
    raw_by_row = {raw.row_number: raw for raw in rows if not raw.is_blank()}
    validated = validate_rows(raw_by_row.values())
    result = ImportResult(dry_run=dry_run, total_rows=len(raw_by_row), columns=tuple(columns))
    result.record_failures(validated.failures, raw_by_row)
    keys = [row.key for row in validated.rows]

    if dry_run:
        plan = plan_import(validated, repository.students_matching(tenant_id, keys=keys))
        result.record_failures(plan.failures, raw_by_row)
        result.record_done(plan.planned)
        tracker.report("classify", 1.0)
        return result

    try:
        with repository.students_import_lock(tenant_id, wait_seconds=lock_wait_seconds):
            # Looked up under the lock: no other import changes these students until we finish.
            plan = plan_import(validated, repository.students_matching(tenant_id, keys=keys))
            result.record_failures(plan.failures, raw_by_row)
            result.record_done(p for p in plan.planned if p.action is Action.UNCHANGED)
            tracker.report("classify", 1.0)
            _write(
                tenant_id,
                tenant_code=code,
                writes=plan.writes(),
                initial_password=initial_password,
                initial_password_hash=initial_password_hash,
                result=result,
                raw_by_row=raw_by_row,
                tracker=tracker,
                chunk_size=chunk_size,
            )
    except repository.ImportLockBusy as exc:
        raise StudentsImportBusy(m.IMPORT_BUSY) from exc
    counts = result.counts()
    logger.info("students import tenant=%s %s", tenant_id, counts)
    return result


def _write(
    tenant_id: int,
    *,
    tenant_code: str,
    writes: Sequence[PlannedRow],
    initial_password: str,
    initial_password_hash: str,
    result: ImportResult,
    raw_by_row: dict[int, RawRow],
    tracker: ProgressTracker,
    chunk_size: int,
) -> None:
    creates = [p for p in writes if p.action is Action.CREATE]
    ps_numbers: dict[int, str] = {}
    if creates:
        numbers = repository.ps_numbers_reserve(tenant_id, count=len(creates))
        ps_numbers = {
            p.row.row_number: format_ps_number(n) for p, n in zip(creates, numbers, strict=True)
        }
    needs_user = creates + [p for p in writes if p.action is Action.RESTORE and p.user_id is None]
    # Ids of the users to create, taken up front: the chunks COPY users and what points at them.
    user_ids = {
        p.row.row_number: user_id
        for p, user_id in zip(needs_user, repository.user_ids_reserve(len(needs_user)), strict=True)
    }
    # One hash for the whole import (ADR 0102): ~0.5 s of PBKDF2 instead of 0.5 s per student.
    password_hash = (
        (initial_password_hash or make_password(initial_password)) if needs_user else None
    )

    chunks = chunked(writes, chunk_size)
    tracker.report("write", 0.0)
    for index, chunk in enumerate(chunks, start=1):
        committed, failures = _write_chunk(
            tenant_id,
            tenant_code=tenant_code,
            chunk=chunk,
            ps_numbers=ps_numbers,
            user_ids=user_ids,
            password_hash=password_hash,
        )
        result.record_done(committed)
        result.record_failures(failures, raw_by_row)
        tracker.report("write", index / len(chunks))
    if not chunks:
        tracker.report("write", 1.0)


def _write_chunk(
    tenant_id: int,
    *,
    tenant_code: str,
    chunk: Sequence[PlannedRow],
    ps_numbers: dict[int, str],
    user_ids: dict[int, int],
    password_hash: str | None,
) -> tuple[list[PlannedRow], list[RowFailure]]:
    try:
        with transaction.atomic():
            repository.students_write(
                tenant_id,
                tenant_code=tenant_code,
                rows=chunk,
                ps_numbers=ps_numbers,
                user_ids=user_ids,
                password_hash=password_hash,
            )
    except (IntegrityError, DataError, repository.StudentsChanged) as exc:
        logger.warning(
            "students import tenant=%s: chunk of rows %s-%s refused (%s), replaying row by row",
            tenant_id,
            chunk[0].row.row_number,
            chunk[-1].row.row_number,
            repository.constraint_name(exc) or type(exc).__name__,
        )
    else:
        return list(chunk), []

    committed: list[PlannedRow] = []
    failures: list[RowFailure] = []
    for planned in chunk:
        try:
            with transaction.atomic():
                repository.students_write(
                    tenant_id,
                    tenant_code=tenant_code,
                    rows=[planned],
                    ps_numbers=ps_numbers,
                    user_ids=user_ids,
                    password_hash=password_hash,
                )
        except (IntegrityError, DataError, repository.StudentsChanged) as exc:
            failures.append(write_failure(planned, _reason(exc, planned, tenant_code, ps_numbers)))
        else:
            committed.append(planned)
    return committed, failures


def _reason(
    exc: Exception, planned: PlannedRow, tenant_code: str, ps_numbers: dict[int, str]
) -> Message:
    ps_number = ps_numbers.get(planned.row.row_number) or planned.ps_number or ""
    if isinstance(exc, repository.StudentsChanged):
        return m.STUDENT_CHANGED
    if repository.is_username_conflict(exc):
        return m.USERNAME_TAKEN.format(username=username_for(tenant_code, ps_number))
    constraint = repository.constraint_name(exc)
    if constraint == PS_NUMBER_CONSTRAINT:
        return m.PS_NUMBER_TAKEN.format(ps_number=ps_number)
    if constraint == ACTIVE_KEY_CONSTRAINT:
        return m.ALREADY_EXISTS
    logger.warning("students import row %s: %r", planned.row.row_number, exc)
    return m.WRITE_FAILED.format(detail=constraint or type(exc).__name__)
