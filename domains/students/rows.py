"""Reading student rows: header aliases, normalisation, validation, duplicates. Pure: no Django.

Decisions (the users see them as error messages, so they are kept here, next to the code):

- Columns are found by name, not position, with Korean and English aliases; spaces, ``_``,
  ``-``, ``.``, ``*`` and text in parentheses are ignored ("학부모 전화번호(필수)" works).
- Phones are stored as digits. A number cell loses the leading 0 (1012345678), so a number
  that does not start with 0 gets it back; ``+82``/``82`` becomes ``0``. Only Korean mobile
  numbers (01[016789], 10-11 digits) are accepted: parents and students are reached by SMS.
- Grades are stored as 1-3 within the school level (중2 = middle/2). Accepted: 1-3 (level from
  the school), 7-12 (7-9 = 중1-3, 10-12 = 고1-3), and 중1-3/고1-3 (with or without 학년).
- The level comes from the school type column, the grade (중/고 or 7-12) and the school name
  suffix (…중, …중학교, …고, …고교, …고등학교); if two of them disagree the row fails.
- An empty optional cell means "leave as is": an import never blanks stored data.
- Every problem of a row is reported, each as a code with Korean and English text.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domains.common.text import clean_number, clean_text, strip_invisible
from domains.students import messages as m
from domains.students.messages import Message

SCHOOL_MIDDLE = "middle"
SCHOOL_HIGH = "high"
GENDER_MALE = "M"
GENDER_FEMALE = "F"

REQUIRED_FIELDS = ("name", "parent_phone")

# Korean label first: it names the column in messages and in the failures file.
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "name": ("이름", "name"),
    "parent_phone": ("학부모 전화번호", "parent phone"),
    "phone": ("학생 전화번호", "student phone"),
    "school": ("학교", "school"),
    "school_type": ("학교 구분", "school type"),
    "grade": ("학년", "grade"),
    "gender": ("성별", "gender"),
    "memo": ("메모", "memo"),
    "high_school_class": ("반", "class"),
    "major": ("계열", "major"),
    "parent_name": ("학부모 이름", "parent name"),
}

HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("이름", "학생 이름", "학생명", "성명", "name", "student name", "student_name"),
    "parent_phone": (
        "학부모 전화번호",
        "학부모 전화",
        "학부모 연락처",
        "학부모 휴대폰",
        "보호자 전화번호",
        "보호자 연락처",
        "부모님 전화번호",
        "parent_phone",
        "parent phone",
        "parent mobile",
    ),
    "phone": (
        "전화번호",
        "학생 전화번호",
        "학생 전화",
        "학생 연락처",
        "학생 휴대폰",
        "휴대폰",
        "phone",
        "student phone",
        "mobile",
    ),
    "school": ("학교", "학교명", "학교 이름", "school", "school name"),
    "school_type": ("학교 구분", "학교급", "과정", "school type", "school_type", "level"),
    "grade": ("학년", "grade", "year"),
    "gender": ("성별", "gender", "sex"),
    "memo": ("메모", "비고", "memo", "note", "notes"),
    "high_school_class": ("반", "학급", "class", "high_school_class"),
    "major": ("계열", "전공", "major", "track"),
    "parent_name": ("학부모 이름", "학부모 성함", "학부모명", "보호자 이름", "parent name"),
}

# Column widths of the models; checked here because bulk writes must never truncate.
MAX_LENGTH: dict[str, int] = {
    "name": 50,
    "parent_phone": 20,
    "phone": 20,
    "high_school": 100,
    "middle_school": 100,
    "school": 100,
    "high_school_class": 20,
    "major": 50,
    "memo": 2000,
    "parent_name": 50,
}

_HEADER_NOISE = re.compile(r"\([^)]*\)|[\s_\-.*:]")


def header_key(text: str) -> str:
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", strip_invisible(text))).lower()


_ALIAS_TO_FIELD: dict[str, str] = {
    header_key(alias): name for name, aliases in HEADER_ALIASES.items() for alias in aliases
}


class CellError:
    """An Excel error value (#N/A, #VALUE!) read from a cell; never valid input."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"CellError({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CellError) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


@dataclass(frozen=True, slots=True)
class HeaderMap:
    columns: dict[str, int]  # field -> 0-based column index
    labels: dict[str, str]  # field -> header text as written in the file
    missing: tuple[str, ...]
    duplicate: tuple[str, str] | None = None  # two header texts that map to one field

    @property
    def ok(self) -> bool:
        return not self.missing and self.duplicate is None

    def missing_message(self) -> Message:
        return m.MISSING_COLUMNS.format(
            columns=", ".join(FIELD_LABELS[f][0] for f in self.missing),
            columns_en=", ".join(FIELD_LABELS[f][1] for f in self.missing),
        )


def map_header(cells: Sequence[object]) -> HeaderMap:
    """Which column holds which field; unknown columns are ignored (kept in the source file)."""
    columns: dict[str, int] = {}
    labels: dict[str, str] = {}
    duplicate: tuple[str, str] | None = None
    for index, cell in enumerate(cells):
        if cell is None:
            continue
        text = str(cell).strip()
        name = _ALIAS_TO_FIELD.get(header_key(text))
        if name is None:
            continue
        if name in columns:
            duplicate = duplicate or (labels[name], text)
            continue
        columns[name] = index
        labels[name] = text
    missing = tuple(f for f in REQUIRED_FIELDS if f not in columns)
    return HeaderMap(columns=columns, labels=labels, missing=missing, duplicate=duplicate)


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row as read: Excel row number and the cell values of the mapped fields."""

    row_number: int
    values: Mapping[str, object]

    def is_blank(self) -> bool:
        return all(_is_blank(v) for v in self.values.values())


@dataclass(frozen=True, slots=True)
class StudentRow:
    """A valid, normalised row. ``None`` means "not given": the stored value stays."""

    row_number: int
    name: str
    parent_phone: str
    phone: str | None = None
    school_type: str | None = None
    high_school: str | None = None
    middle_school: str | None = None
    high_school_class: str | None = None
    major: str | None = None
    grade: int | None = None
    gender: str | None = None
    memo: str | None = None
    parent_name: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.parent_phone)


@dataclass(frozen=True, slots=True)
class RowFailure:
    row_number: int
    name: str
    messages: tuple[Message, ...]

    @property
    def code(self) -> str:
        return self.messages[0].code

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row_number,
            "name": self.name,
            "code": self.code,
            "codes": [msg.code for msg in self.messages],
            "reason": " / ".join(msg.ko for msg in self.messages),
            "reason_en": " / ".join(msg.en for msg in self.messages),
        }


class _Invalid(Exception):
    def __init__(self, message: Message) -> None:
        super().__init__(message.code)
        self.message = message


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _label_params(name: str) -> dict[str, str]:
    ko, en = FIELD_LABELS[name]
    return {"field": ko, "field_en": en}


def _text(name: str, value: object, *, multiline: bool = False) -> str | None:
    """A cell as clean text (``clean_text``: invisible characters out, NFC), width-checked."""
    if _is_blank(value):
        return None
    if isinstance(value, bool | CellError | dt.date | dt.time | dt.timedelta):
        raise _Invalid(m.CELL_TYPE_INVALID.format(**_label_params(name)))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = clean_text(str(value))
    text = text if multiline else " ".join(text.split())
    if len(text) > MAX_LENGTH[name]:
        raise _Invalid(m.TOO_LONG.format(limit=MAX_LENGTH[name], **_label_params(name)))
    return text or None


# ASCII only: ``\d`` alone also matches the digits of every other script (audit F13);
# ``clean_number`` has already folded those to ASCII.
_PHONE_ALLOWED = re.compile(r"^\+?[\d\s\-.()]+$", re.ASCII)
_MOBILE = re.compile(r"^01(?:0\d{8}|[16789]\d{7,8})$", re.ASCII)
_NOT_DIGIT = re.compile(r"\D", re.ASCII)


def normalize_phone(value: object) -> str | None:
    """Digits of a Korean mobile number, or None when blank; ValueError when not one.

    1012345678 (a number cell), 10-1234-5678, '010-1234-5678', '+82 10 1234 5678' and
    '+82 (0)10-1234-5678' all give '01012345678', and so do fullwidth or Arabic-Indic digits
    and zero-width characters pasted in with the number.
    """
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("phone")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("phone")
        value = int(value)
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = clean_number(value)
    else:
        raise ValueError("phone")
    if not _PHONE_ALLOWED.match(text):
        raise ValueError("phone")
    digits = _NOT_DIGIT.sub("", text)
    if text.startswith("+"):
        if not digits.startswith("82"):
            raise ValueError("phone")
        digits = digits[2:]
    elif digits.startswith("82") and len(digits) in (12, 13):
        digits = digits[2:]
    if not digits.startswith("0"):
        digits = "0" + digits
    if not _MOBILE.match(digits):
        raise ValueError("phone")
    return digits


def normalize_name(value: object) -> str | None:
    try:
        return _text("name", value)
    except _Invalid:
        return None


_GENDERS = {
    **dict.fromkeys(("남", "남자", "남성", "m", "male", "man", "boy"), GENDER_MALE),
    **dict.fromkeys(("여", "여자", "여성", "f", "female", "woman", "girl"), GENDER_FEMALE),
}
_SCHOOL_TYPES = {
    **dict.fromkeys(("중", "중학교", "중등", "중학생", "middle", "m"), SCHOOL_MIDDLE),
    **dict.fromkeys(("고", "고등학교", "고등", "고교", "고등학생", "high", "h"), SCHOOL_HIGH),
}
_GRADE_TEXT = re.compile(r"^(중학교|중|고등학교|고교|고)?\s*(\d{1,2})\s*(?:학년)?$", re.ASCII)
_GRADE_LEVEL_PREFIX = {"중": SCHOOL_MIDDLE, "중학교": SCHOOL_MIDDLE}


def normalize_gender(value: object) -> str | None:
    if _is_blank(value):
        return None
    if not isinstance(value, str):
        raise _Invalid(m.GENDER_INVALID)
    gender = _GENDERS.get(unicodedata.normalize("NFKC", strip_invisible(value)).strip().lower())
    if gender is None:
        raise _Invalid(m.GENDER_INVALID)
    return gender


def normalize_school_type(value: object) -> str | None:
    if _is_blank(value):
        return None
    school_type = _SCHOOL_TYPES.get(header_key(value)) if isinstance(value, str) else None
    if school_type is None:
        raise _Invalid(m.SCHOOL_TYPE_INVALID)
    return school_type


def normalize_grade(value: object) -> tuple[str | None, int] | None:
    """(school level if the grade says it, grade 1-3), or None when blank."""
    if _is_blank(value):
        return None
    level: str | None = None
    if isinstance(value, bool):
        raise _Invalid(m.GRADE_INVALID)
    if isinstance(value, float):
        if not value.is_integer():
            raise _Invalid(m.GRADE_INVALID)
        value = int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        match = _GRADE_TEXT.match(clean_number(value))
        if match is None:
            raise _Invalid(m.GRADE_INVALID)
        prefix, number = match.group(1), int(match.group(2))
        if prefix:
            level = _GRADE_LEVEL_PREFIX.get(prefix, SCHOOL_HIGH)
    else:
        raise _Invalid(m.GRADE_INVALID)
    if level is not None:
        if not 1 <= number <= 3:
            raise _Invalid(m.GRADE_INVALID)
        return level, number
    if 1 <= number <= 3:
        return None, number
    if 7 <= number <= 9:
        return SCHOOL_MIDDLE, number - 6
    if 10 <= number <= 12:
        return SCHOOL_HIGH, number - 9
    raise _Invalid(m.GRADE_INVALID)


_MIDDLE_SUFFIXES = ("중학교", "중")
_HIGH_SUFFIXES = ("고등학교", "고교", "고")


def school_level(school: str) -> str | None:
    compact = school.replace(" ", "")
    if compact.endswith(_MIDDLE_SUFFIXES):
        return SCHOOL_MIDDLE
    if compact.endswith(_HIGH_SUFFIXES):
        return SCHOOL_HIGH
    return None


def _collect(errors: list[Message], parse: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return parse(*args, **kwargs)
    except _Invalid as exc:
        errors.append(exc.message)
        return None


def _parse_phone(message: Message, value: object) -> str | None:
    try:
        return normalize_phone(value)
    except ValueError:
        raise _Invalid(message) from None


def normalize_row(raw: RawRow) -> StudentRow | RowFailure:
    """Validate and normalise one row; a failure lists every problem of the row."""
    values = raw.values
    errors: list[Message] = []
    name = _collect(errors, _text, "name", values.get("name"))
    if name is None and not errors:
        errors.append(m.NAME_REQUIRED)
    parent_phone = _collect(
        errors, _parse_phone, m.PARENT_PHONE_INVALID, values.get("parent_phone")
    )
    if parent_phone is None and _is_blank(values.get("parent_phone")):
        errors.append(m.PARENT_PHONE_REQUIRED)
    phone = _collect(errors, _parse_phone, m.PHONE_INVALID, values.get("phone"))
    school = _collect(errors, _text, "school", values.get("school"))
    school_type = _collect(errors, normalize_school_type, values.get("school_type"))
    grade_info = _collect(errors, normalize_grade, values.get("grade"))
    gender = _collect(errors, normalize_gender, values.get("gender"))
    memo = _collect(errors, _text, "memo", values.get("memo"), multiline=True)
    high_school_class = _collect(
        errors, _text, "high_school_class", values.get("high_school_class")
    )
    major = _collect(errors, _text, "major", values.get("major"))
    parent_name = _collect(errors, _text, "parent_name", values.get("parent_name"))

    grade_level, grade = grade_info if grade_info else (None, None)
    levels = {lvl for lvl in (school_type, grade_level) if lvl}
    if school:
        named_level = school_level(school)
        if named_level:
            levels.add(named_level)
    level = next(iter(levels)) if len(levels) == 1 else None
    if len(levels) > 1:
        errors.append(m.SCHOOL_LEVEL_CONFLICT)
    elif school and level is None:
        errors.append(m.SCHOOL_LEVEL_UNKNOWN)
    if (high_school_class or major) and level != SCHOOL_HIGH and len(levels) <= 1:
        errors.append(m.HIGH_SCHOOL_ONLY)

    if errors or name is None or parent_phone is None:
        return RowFailure(raw.row_number, name or _display_name(values.get("name")), tuple(errors))
    return StudentRow(
        row_number=raw.row_number,
        name=name,
        parent_phone=parent_phone,
        phone=phone,
        school_type=level,
        high_school=school if level == SCHOOL_HIGH else None,
        middle_school=school if level == SCHOOL_MIDDLE else None,
        high_school_class=high_school_class,
        major=major,
        grade=grade,
        gender=gender,
        memo=memo,
        parent_name=parent_name,
    )


def _display_name(value: object) -> str:
    return "" if _is_blank(value) else str(value).strip()[:50]


def _row_key(raw: RawRow) -> tuple[str, str] | None:
    name = normalize_name(raw.values.get("name"))
    try:
        phone = normalize_phone(raw.values.get("parent_phone"))
    except ValueError:
        return None
    return (name, phone) if name and phone else None


@dataclass(slots=True)
class ValidatedRows:
    rows: list[StudentRow] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)


def validate_rows(raw_rows: Iterable[RawRow]) -> ValidatedRows:
    """Normalise every row and fail repeats of a (name, parent_phone) already seen in the file.

    The first row with a key owns it even when it fails for another reason: both rows describe
    the same student, so importing the second one would hide the problem in the first.
    """
    result = ValidatedRows()
    first_row_of: dict[tuple[str, str], int] = {}
    for raw in raw_rows:
        if raw.is_blank():
            continue
        outcome = normalize_row(raw)
        # A valid row's key is the one normalize_row made; only a failed row needs it again.
        key = outcome.key if isinstance(outcome, StudentRow) else _row_key(raw)
        if key is not None:
            first = first_row_of.setdefault(key, raw.row_number)
            if first != raw.row_number:
                duplicate = m.DUPLICATE_IN_FILE.format(first_row=first)
                result.failures.append(RowFailure(raw.row_number, key[0], (duplicate,)))
                continue
        if isinstance(outcome, RowFailure):
            result.failures.append(outcome)
        else:
            result.rows.append(outcome)
    return result


def jsonable(value: object) -> object:
    """A cell value for a JSON result (and back into a failures workbook)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, CellError):
        return value.text
    return str(value)
