"""Reading student workbooks and writing the failures workbook (pure, real .xlsx files)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from domains.students.rows import CellError
from domains.students.xlsx import (
    WorkbookLimits,
    WorkbookRejected,
    failures_workbook,
    read_students_xlsx,
)
from tests.unit.students.workbooks import (
    FULL_HEADER,
    ParseSpy,
    bomb_xlsx_bytes,
    large_xlsx_bytes,
    realistic_students,
    realistic_xlsx_bytes,
    shared_strings_xlsx_bytes,
    truncated,
    with_damaged_sheet,
    xlsx_bytes,
)


def rejected_code(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(WorkbookRejected) as caught:
        read_students_xlsx(data, **kwargs)
    message = caught.value.message
    # every refusal explains itself in both languages
    assert message.ko
    assert message.en
    return caught.value.code


def test_rows_keep_their_excel_row_numbers_and_typed_values() -> None:
    # given a title row above the header, a blank row in the data
    data = xlsx_bytes(
        [
            ["홍길동", 1012345678, None, "휘문고", 2, "남", "메모"],
            [None, None, None, None, None, None, None],
            ["김철수", "010-1111-2222"],
        ],
        before=[["2025 학생 명단"]],
    )

    # when
    sheet = read_students_xlsx(data)

    # then
    assert sheet.header_row == 2
    assert [r.row_number for r in sheet.rows] == [3, 5]
    assert sheet.rows[0].values["parent_phone"] == 1012345678
    assert sheet.rows[1].values["name"] == "김철수"
    assert sheet.rows[1].values["school"] is None
    assert sheet.columns[:2] == (("name", "이름"), ("parent_phone", "학부모 전화번호"))


def test_unknown_columns_are_ignored_and_columns_may_be_in_any_order() -> None:
    data = xlsx_bytes([["x", "010-1234-5678", "홍길동"]], header=["기타", "parent_phone", "name"])
    sheet = read_students_xlsx(data)
    assert dict(sheet.rows[0].values) == {"parent_phone": "010-1234-5678", "name": "홍길동"}


def test_error_cells_become_cell_errors() -> None:
    # given a cell holding an Excel error value (written as such by openpyxl)
    workbook = Workbook()
    workbook.active.append(["이름", "학부모 전화번호"])
    workbook.active.append(["홍길동", None])
    workbook.active["B2"].value = "#N/A"  # openpyxl stores known error strings as error cells
    buffer = io.BytesIO()
    workbook.save(buffer)

    # when
    sheet = read_students_xlsx(buffer.getvalue())

    # then
    assert sheet.rows[0].values["parent_phone"] == CellError("#N/A")


def test_not_an_xlsx_is_refused() -> None:
    assert rejected_code("이름,학부모 전화번호\n".encode()) == "file_not_xlsx"
    assert rejected_code(b"") == "file_not_xlsx"


def test_an_old_xls_or_encrypted_file_is_refused_with_its_own_message() -> None:
    assert rejected_code(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512) == "file_legacy_xls"


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    assert rejected_code(buffer.getvalue()) == "file_not_xlsx"


def test_corrupt_files_are_refused() -> None:
    valid = xlsx_bytes([["홍길동", "010-1234-5678"]])
    assert rejected_code(truncated(valid)) == "file_corrupt"
    assert rejected_code(with_damaged_sheet(valid)) == "file_corrupt"


def test_an_empty_sheet_is_refused() -> None:
    assert rejected_code(xlsx_bytes([], header=None)) == "sheet_empty"


def test_a_header_without_rows_is_refused() -> None:
    assert rejected_code(xlsx_bytes([])) == "sheet_no_rows"


def test_missing_required_columns_are_named() -> None:
    # given a header without the parent phone
    data = xlsx_bytes([["홍길동", "휘문고"]], header=["이름", "학교"])

    # when
    with pytest.raises(WorkbookRejected) as caught:
        read_students_xlsx(data)

    # then
    assert caught.value.code == "columns_missing"
    assert "학부모 전화번호" in caught.value.message.ko


def test_two_columns_for_one_field_are_refused() -> None:
    data = xlsx_bytes([["a", "b", "c"]], header=["이름", "학부모 전화번호", "parent_phone"])
    assert rejected_code(data) == "column_duplicate"


def test_formulas_are_refused_with_the_cell() -> None:
    # given a phone computed by a formula
    data = xlsx_bytes([["홍길동", '=CONCAT("010","12345678")']])

    # when
    with pytest.raises(WorkbookRejected) as caught:
        read_students_xlsx(data)

    # then
    assert caught.value.code == "cell_formula"
    assert "B2" in caught.value.message.ko


def test_text_that_only_looks_like_a_formula_is_not_one() -> None:
    # given a memo typed as text "=== 주의 ===" (stored as a string, not a formula)
    workbook = Workbook()
    workbook.active.append(["이름", "학부모 전화번호", "메모"])
    workbook.active.append(["홍길동", "010-1234-5678"])
    workbook.active["C2"].value = "=== 주의 ==="
    workbook.active["C2"].data_type = "s"
    buffer = io.BytesIO()
    workbook.save(buffer)

    # when
    sheet = read_students_xlsx(buffer.getvalue())

    # then
    assert sheet.rows[0].values["memo"] == "=== 주의 ==="


def test_merged_cells_in_the_data_are_refused() -> None:
    data = xlsx_bytes(
        [["홍길동", "010-1234-5678", None, "휘문고"], ["김철수", "010-1111-2222", None, None]],
        merge=["D2:D3"],
    )
    with pytest.raises(WorkbookRejected) as caught:
        read_students_xlsx(data)
    assert caught.value.code == "cells_merged"
    assert "D2:D3" in caught.value.message.en


def test_a_merged_title_above_the_header_is_accepted() -> None:
    data = xlsx_bytes([["홍길동", "010-1234-5678"]], before=[["2025 학생 명단"]], merge=["A1:G1"])
    assert len(read_students_xlsx(data).rows) == 1


def test_rows_over_the_limit_are_refused() -> None:
    # given exactly the limit, then one row more
    assert len(read_students_xlsx(large_xlsx_bytes(30), max_rows=30).rows) == 30

    # then
    assert rejected_code(large_xlsx_bytes(31), max_rows=30) == "rows_too_many"


@pytest.mark.slow
def test_the_default_limit_refuses_20001_rows() -> None:
    assert rejected_code(large_xlsx_bytes(20_001)) == "rows_too_many"


def test_the_failures_workbook_holds_row_values_and_reason_and_text_stays_text() -> None:
    # given a stored result with one failed row whose memo looks like a formula
    result = {
        "columns": ["이름", "학부모 전화번호", "메모"],
        "failed_rows": [
            {
                "row": 5,
                "name": "홍길동",
                "reason": "학부모 전화번호 형식이 올바르지 않습니다.",
                "values": ["홍길동", "010-12", "=1+1"],
            }
        ],
    }

    # when
    data = failures_workbook(result)

    # then
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows == [
        ["행 번호", "이름", "학부모 전화번호", "메모", "사유"],
        [5, "홍길동", "010-12", "=1+1", "학부모 전화번호 형식이 올바르지 않습니다."],
    ]
    assert sheet["D2"].data_type == "s"


def test_the_failures_workbook_can_be_read_back_as_an_import() -> None:
    # given a failures workbook
    result = {
        "columns": ["이름", "학부모 전화번호"],
        "failed_rows": [{"row": 9, "name": "홍길동", "reason": "x", "values": ["홍길동", "010"]}],
    }

    # when the user fixes nothing and uploads it again
    sheet = read_students_xlsx(failures_workbook(result))

    # then the extra columns are ignored and the original values come back
    assert dict(sheet.rows[0].values) == {"name": "홍길동", "parent_phone": "010"}


# --- workbook bombs (audit F7) ----------------------------------------------------------------
MIB = 1024 * 1024


def test_F7_a_600_kb_bomb_is_refused_before_openpyxl_parses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the audit's probe: ~200 MB of shared strings and cells in a ~600 KB upload
    data = bomb_xlsx_bytes()
    assert len(data) < 700 * 1024
    spy = ParseSpy().install(monkeypatch)

    # when
    with pytest.raises(WorkbookRejected) as caught:
        read_students_xlsx(data)

    # then refused from the zip's declared sizes, with a message in both languages
    assert caught.value.code == "file_too_large"
    assert "40" in caught.value.message.ko
    assert "40 MB" in caught.value.message.en
    assert spy.calls == 0


def test_F7_one_part_over_its_cap_is_refused_though_the_total_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given ~21 MB of shared strings and a tiny sheet
    data = bomb_xlsx_bytes(strings_mb=20, sheet_mb=0)
    limits = WorkbookLimits(max_uncompressed_bytes=100 * MIB, max_part_bytes=16 * MIB)
    spy = ParseSpy().install(monkeypatch)

    # when
    with pytest.raises(WorkbookRejected) as caught:
        read_students_xlsx(data, limits=limits)

    # then
    assert caught.value.code == "file_too_large"
    assert "16 MB" in caught.value.message.en
    assert spy.calls == 0


def test_F7_the_shared_string_count_is_capped_exactly_and_before_the_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given 3 MB of one-letter shared strings (185,040 of them: the count crosses the 1 MB
    # blocks it is read in) and a sheet holding only the header
    data = bomb_xlsx_bytes(strings_mb=3, sheet_mb=0)
    items = 3 * ((1024 * 1024) // 17)
    spy = ParseSpy().install(monkeypatch)

    # when one string over the cap
    with pytest.raises(WorkbookRejected) as caught:
        read_students_xlsx(data, limits=WorkbookLimits(max_shared_strings=items - 1))

    # then refused without a parse
    assert caught.value.code == "file_too_many_strings"
    assert "185,039" in caught.value.message.en
    assert spy.calls == 0

    # when exactly at the cap, the file goes on to the parse (which finds no data rows)
    assert rejected_code(data, limits=WorkbookLimits(max_shared_strings=items)) == "sheet_no_rows"
    assert spy.calls == 1


@pytest.mark.slow
def test_F7_a_realistic_20000_row_workbook_fits_the_default_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given 20,000 students with all 11 columns filled, laid out as Excel saves them
    data = realistic_xlsx_bytes(20_000)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sum(info.file_size for info in archive.infolist()) > 15 * MIB
    # the parse of this file is measured in domains/students/xlsx.py, not repeated here
    spy = ParseSpy(call_through=False).install(monkeypatch)

    # when
    read_students_xlsx(data)

    # then it passed every check made before the parse
    assert spy.calls == 1


def test_an_excel_layout_workbook_reads_every_column() -> None:
    # given a few rows of the realistic file, its text in the shared-strings table
    data = shared_strings_xlsx_bytes(realistic_students(30), header=FULL_HEADER)

    # when
    sheet = read_students_xlsx(data)

    # then
    assert len(sheet.rows) == 30
    assert [label for _field, label in sheet.columns] == list(FULL_HEADER)
    assert sheet.rows[0].values["school_type"] == "고"
