"""Whole files through ``students_import_file``: bad files are refused before any write."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.utils import translation
from openpyxl import load_workbook

from domains.students.errors import StudentsImportRejected
from domains.students.models import Student
from domains.students.services import students_import_file
from domains.students.xlsx import failures_workbook
from domains.tenants.models import Tenant
from tests.support.students import PASSWORD, RecordingProgress, table_counts
from tests.support.workbooks import (
    large_xlsx_bytes,
    truncated,
    with_damaged_sheet,
    xlsx_bytes,
)

pytestmark = pytest.mark.django_db

VALID = xlsx_bytes([["홍길동", "010-1234-5678"], ["김철수", 1011112222]])


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


BAD_FILES = {
    "file_not_xlsx": "이름,학부모 전화번호\n홍길동,01012345678\n".encode(),
    "file_legacy_xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024,
    "file_corrupt": truncated(VALID),
    "sheet_empty": xlsx_bytes([], header=None),
    "sheet_no_rows": xlsx_bytes([]),
    "columns_missing": xlsx_bytes([["홍길동", "휘문고"]], header=["이름", "학교"]),
    "cell_formula": xlsx_bytes([["홍길동", "=A1"]]),
    "cells_merged": xlsx_bytes([["홍길동", "010-1234-5678"], ["김철수"]], merge=["A2:A3"]),
}


@pytest.mark.parametrize("code", sorted(BAD_FILES))
def test_bad_files_are_refused_with_their_code_and_nothing_is_written(
    alpha: Tenant, code: str
) -> None:
    # given
    before = table_counts()

    # when
    with pytest.raises(StudentsImportRejected) as caught:
        students_import_file(alpha.id, data=BAD_FILES[code], initial_password=PASSWORD)

    # then
    assert caught.value.code == code
    assert caught.value.status_code == 400
    assert table_counts() == before


def test_a_damaged_worksheet_and_a_foreign_zip_are_refused(alpha: Tenant) -> None:
    # given a workbook with a damaged sheet and a Word file
    # when/then importing either is refused with its code
    for data, code in ((with_damaged_sheet(VALID), "file_corrupt"), (_docx(), "file_not_xlsx")):
        with pytest.raises(StudentsImportRejected) as caught:
            students_import_file(alpha.id, data=data, initial_password=PASSWORD)
        assert caught.value.code == code


@pytest.mark.slow
def test_20001_rows_are_refused_before_any_database_work(
    alpha: Tenant, django_assert_num_queries: object
) -> None:
    # given a file one row over the default limit
    data = large_xlsx_bytes(20_001)

    # when / then: refused, and not a single SQL statement was sent
    with django_assert_num_queries(0), pytest.raises(StudentsImportRejected) as caught:  # type: ignore[operator]
        students_import_file(alpha.id, data=data, initial_password=PASSWORD)
    assert caught.value.code == "rows_too_many"
    assert "20000" in caught.value.message.ko


def test_a_short_password_is_refused_before_the_file_is_read(alpha: Tenant) -> None:
    # given a password of seven characters and no file at all
    # when/then the import is refused for the password
    with pytest.raises(StudentsImportRejected) as caught:
        students_import_file(alpha.id, data=b"not even a file", initial_password="1234567")
    assert caught.value.code == "password_too_short"


def test_the_error_text_follows_the_active_language(alpha: Tenant) -> None:
    # given
    with pytest.raises(StudentsImportRejected) as caught:
        students_import_file(alpha.id, data=b"plain text", initial_password=PASSWORD)

    # when rendered in Korean and in English
    with translation.override("ko"):
        korean = str(caught.value.detail)
    with translation.override("en"):
        english = str(caught.value.detail)

    # then
    assert korean.startswith("엑셀(.xlsx) 파일이 아닙니다")
    assert english.startswith("The file is not an Excel workbook")


def test_a_file_imports_and_its_failed_rows_come_back_as_a_workbook(
    alpha: Tenant, progress: RecordingProgress
) -> None:
    # given a file with one good row and one bad parent phone
    data = xlsx_bytes(
        [
            ["홍길동", "010-1234-5678", None, "휘문고", 2, "남"],
            ["김철수", "02-555-1234", None, "대치중", 3, "남", "형"],
        ]
    )

    # when
    result = students_import_file(alpha.id, data=data, initial_password=PASSWORD, progress=progress)
    workbook = load_workbook(io.BytesIO(failures_workbook(result.as_dict())))

    # then
    assert Student.objects.filter(tenant=alpha).count() == 1
    rows = [[c.value for c in row] for row in workbook.worksheets[0].iter_rows()]
    assert rows[0] == [
        "행 번호",
        "이름",
        "학부모 전화번호",
        "전화번호",
        "학교",
        "학년",
        "성별",
        "메모",
        "사유",
    ]
    assert rows[1] == [
        3,
        "김철수",
        "02-555-1234",
        None,
        "대치중",
        3,
        "남",
        "형",
        "학부모 전화번호 형식이 올바르지 않습니다.",
    ]
    assert [call[0] for call in progress.calls][:2] == ["read", "read"]
    assert progress.calls[-1][3] == 100.0
