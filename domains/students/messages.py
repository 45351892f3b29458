"""User-facing messages of the student import, in Korean and English. Pure: no Django.

The import's pure modules (rows, xlsx) cannot use gettext, and its results are stored and shown
later (a worker writes them, a browser reads them), so every message travels as a stable
``code`` with both texts; the Django layer picks the text for the active language
(``domains.students.errors``) and JSON results carry ``code``, ``reason`` (Korean, the users'
language) and ``reason_en``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    code: str
    ko: str
    en: str

    def format(self, **params: Any) -> Message:
        return Message(self.code, self.ko.format(**params), self.en.format(**params))

    def text(self, language: str | None) -> str:
        return self.ko if (language or "").lower().startswith("ko") else self.en


# --- File-level errors: the whole file is refused before any database work -------------------
NOT_XLSX = Message(
    "file_not_xlsx",
    "엑셀(.xlsx) 파일이 아닙니다. 엑셀에서 'Excel 통합 문서(.xlsx)'로 저장해 주세요.",
    "The file is not an Excel workbook (.xlsx). Save it as 'Excel Workbook (.xlsx)'.",
)
LEGACY_XLS = Message(
    "file_legacy_xls",
    "예전 엑셀 형식(.xls)은 지원하지 않습니다. 'Excel 통합 문서(.xlsx)'로 다시 저장해 주세요.",
    "The old Excel format (.xls) is not supported. Save the file as 'Excel Workbook (.xlsx)'.",
)
CORRUPT = Message(
    "file_corrupt",
    "엑셀 파일이 손상되어 읽을 수 없습니다. 엑셀에서 열어 다시 저장해 주세요.",
    "The Excel file is damaged and cannot be read. Open it in Excel and save it again.",
)
TOO_LARGE = Message(
    "file_too_large",
    "파일의 압축을 푼 크기가 너무 큽니다 (최대 {limit_mb}MB). "
    "필요한 열만 남기거나 파일을 나누어 올려 주세요.",
    "The file is too large once uncompressed (at most {limit_mb} MB). "
    "Keep only the columns you need, or split the file.",
)
TOO_MANY_STRINGS = Message(
    "file_too_many_strings",
    "파일에 서로 다른 글자 값이 너무 많습니다 (최대 {limit:,}개). "
    "필요한 열만 남기거나 파일을 나누어 올려 주세요.",
    "The file holds too many distinct text values (at most {limit:,}). "
    "Keep only the columns you need, or split the file.",
)
EMPTY_SHEET = Message(
    "sheet_empty",
    "첫 번째 시트가 비어 있습니다.",
    "The first sheet is empty.",
)
NO_DATA_ROWS = Message(
    "sheet_no_rows",
    "제목 행 아래에 학생 데이터가 없습니다.",
    "There are no student rows under the header row.",
)
MISSING_COLUMNS = Message(
    "columns_missing",
    "필수 열이 없습니다: {columns}. 첫 행에 열 이름(예: 이름, 학부모 전화번호)을 적어 주세요.",
    "Required columns are missing: {columns_en}. Put column names (e.g. name, parent_phone) "
    "in the first row.",
)
DUPLICATE_COLUMN = Message(
    "column_duplicate",
    "같은 항목의 열이 두 번 있습니다: {first}, {second}.",
    "Two columns hold the same field: {first} and {second}.",
)
FORMULA = Message(
    "cell_formula",
    "수식이 들어 있는 셀이 있습니다 ({cell}). 값으로 붙여넣은 뒤 다시 올려 주세요.",
    "A cell contains a formula ({cell}). Paste the values only and upload again.",
)
MERGED_CELLS = Message(
    "cells_merged",
    "병합된 셀이 있습니다 ({ranges}). 병합을 해제한 뒤 다시 올려 주세요.",
    "The sheet has merged cells ({ranges}). Unmerge them and upload again.",
)
TOO_MANY_ROWS = Message(
    "rows_too_many",
    "한 번에 {limit}행까지 가져올 수 있습니다. 파일을 나누어 올려 주세요.",
    "At most {limit} rows can be imported at once. Split the file and upload the parts.",
)
PASSWORD_TOO_SHORT = Message(
    "password_too_short",
    "초기 비밀번호는 {min_length}자 이상이어야 합니다.",
    "The initial password must be at least {min_length} characters long.",
)
IMPORT_BUSY = Message(
    "import_in_progress",
    "이 학원의 학생 가져오기가 이미 진행 중입니다. 끝난 뒤 다시 시도해 주세요.",
    "A student import is already running for this academy. Try again when it has finished.",
)
TENANT_NOT_FOUND = Message(
    "tenant_not_found",
    "학원을 찾을 수 없습니다.",
    "The academy was not found.",
)

# --- Row-level errors: the row is reported and skipped, the other rows go on -----------------
NAME_REQUIRED = Message("name_required", "이름이 비어 있습니다.", "The name is empty.")
PARENT_PHONE_REQUIRED = Message(
    "parent_phone_required",
    "학부모 전화번호가 비어 있습니다.",
    "The parent's phone number is empty.",
)
PARENT_PHONE_INVALID = Message(
    "parent_phone_invalid",
    "학부모 전화번호 형식이 올바르지 않습니다.",
    "The parent's phone number is not a valid mobile number.",
)
PHONE_INVALID = Message(
    "phone_invalid",
    "학생 전화번호 형식이 올바르지 않습니다.",
    "The student's phone number is not a valid mobile number.",
)
TOO_LONG = Message(
    "value_too_long",
    "{field} 값이 너무 깁니다 (최대 {limit}자).",
    "The {field_en} is too long (at most {limit} characters).",
)
GRADE_INVALID = Message(
    "grade_invalid",
    "학년 형식이 올바르지 않습니다 (1~3, 7~12 또는 중1~고3).",
    "The grade is not valid (1-3, 7-12 or 중1-고3).",
)
GENDER_INVALID = Message(
    "gender_invalid",
    "성별은 남/여(M/F)로 적어 주세요.",
    "The gender must be 남/여 (M/F).",
)
SCHOOL_TYPE_INVALID = Message(
    "school_type_invalid",
    "학교 구분은 중 또는 고로 적어 주세요.",
    "The school type must be 중 (middle) or 고 (high).",
)
SCHOOL_LEVEL_UNKNOWN = Message(
    "school_level_unknown",
    "중학교인지 고등학교인지 알 수 없습니다. 학교 이름을 'OO중'/'OO고'로 적거나 학교 구분 열을 "
    "채워 주세요.",
    "Cannot tell whether the school is a middle or a high school. Write it as 'OO중'/'OO고' "
    "or fill in the school type column.",
)
SCHOOL_LEVEL_CONFLICT = Message(
    "school_level_conflict",
    "학교, 학교 구분, 학년이 서로 맞지 않습니다 (중학교/고등학교).",
    "The school, school type and grade disagree (middle vs high school).",
)
HIGH_SCHOOL_ONLY = Message(
    "high_school_only",
    "반과 계열은 고등학생만 적을 수 있습니다.",
    "Class and major apply to high school students only.",
)
CELL_TYPE_INVALID = Message(
    "cell_invalid",
    "{field} 칸의 값을 읽을 수 없습니다 (날짜나 오류 값이 들어 있습니다).",
    "The {field_en} cell holds a value that cannot be used (a date or an error value).",
)
AMBIGUOUS_MATCH = Message(
    "student_ambiguous",
    "이름과 학부모 전화번호가 같은 학생이 이미 여러 명 있어 어느 학생인지 알 수 없습니다.",
    "Several existing students have this name and parent phone; cannot tell which one is meant.",
)
DUPLICATE_IN_FILE = Message(
    "duplicate_in_file",
    "{first_row}행과 이름·학부모 전화번호가 같습니다.",
    "Same name and parent phone as row {first_row}.",
)

# --- Write-time errors, found when a chunk is replayed row by row ----------------------------
ALREADY_EXISTS = Message(
    "student_exists",
    "같은 이름과 학부모 전화번호의 학생이 그 사이에 등록되었습니다.",
    "A student with the same name and parent phone was registered in the meantime.",
)
PS_NUMBER_TAKEN = Message(
    "ps_number_taken",
    "학생 번호 {ps_number}이(가) 이미 사용 중입니다. 이 행만 다시 가져오면 새 번호가 발급됩니다.",
    "Student number {ps_number} is already in use. Import this row again to get a new number.",
)
USERNAME_TAKEN = Message(
    "username_taken",
    "로그인 아이디 {username}이(가) 이미 있습니다. 이 행만 다시 가져오면 새 아이디가 발급됩니다.",
    "The login name {username} already exists. Import this row again to get a new one.",
)
STUDENT_CHANGED = Message(
    "student_changed",
    "가져오는 동안 이 학생 정보가 다른 곳에서 바뀌거나 삭제되었습니다. 다시 가져와 주세요.",
    "This student was changed or deleted elsewhere during the import. Import the row again.",
)
WRITE_FAILED = Message(
    "write_failed",
    "저장하지 못했습니다 ({detail}).",
    "Could not be saved ({detail}).",
)
