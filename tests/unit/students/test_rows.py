"""Header mapping, normalisation and validation of student rows (pure, no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from domains.students import messages as m
from domains.students.rows import (
    CellError,
    RawRow,
    RowFailure,
    StudentRow,
    map_header,
    normalize_grade,
    normalize_phone,
    normalize_row,
    validate_rows,
)


def raw(row_number: int = 2, **values: object) -> RawRow:
    base: dict[str, object] = {"name": "홍길동", "parent_phone": "010-1234-5678"}
    base.update(values)
    return RawRow(row_number=row_number, values=base)


def failure_codes(outcome: StudentRow | RowFailure) -> list[str]:
    assert isinstance(outcome, RowFailure), outcome
    return [msg.code for msg in outcome.messages]


# --- header ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["이름", "학부모 전화번호", "전화번호"], {"name": 0, "parent_phone": 1, "phone": 2}),
        (["name", "parent_phone", "phone"], {"name": 0, "parent_phone": 1, "phone": 2}),
        (["학생 이름 ", "학부모전화", "학생 전화번호"], {"name": 0, "parent_phone": 1, "phone": 2}),
        (["이름*", "학부모 전화번호(필수)", "Parent Phone"], None),
        (["메모", "Name", "PARENT PHONE", "학년"], {"memo": 0, "name": 1, "parent_phone": 2}),
    ],
)
def test_header_is_mapped_by_name_with_korean_and_english_aliases(
    header: list[str], expected: dict[str, int] | None
) -> None:
    # when
    mapped = map_header(header)

    # then
    if expected is None:  # two columns for the parent phone
        assert mapped.duplicate == ("학부모 전화번호(필수)", "Parent Phone")
        assert not mapped.ok
    else:
        assert {k: v for k, v in mapped.columns.items() if k in expected} == expected
        assert mapped.ok


def test_header_without_parent_phone_reports_the_missing_column_in_both_languages() -> None:
    # given a header with a name but no parent phone
    mapped = map_header(["이름", "학교", None, "기타"])

    # when
    message = mapped.missing_message()

    # then
    assert mapped.missing == ("parent_phone",)
    assert message.code == "columns_missing"
    assert "학부모 전화번호" in message.ko
    assert "parent phone" in message.en


# --- phones ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1012345678, "01012345678"),  # a number cell lost the leading 0
        (1012345678.0, "01012345678"),  # and as a float
        ("010-1234-5678", "01012345678"),
        (" 010 1234 5678 ", "01012345678"),
        ("010.1234.5678", "01012345678"),
        ("(010) 1234-5678", "01012345678"),
        ("+82 10-1234-5678", "01012345678"),
        ("+82 (0)10 1234 5678", "01012345678"),
        ("821012345678", "01012345678"),
        ("０１０－１２３４－５６７８", "01012345678"),  # noqa: RUF001 - full-width digits
        ("011-234-5678", "0112345678"),  # old 10-digit mobile
        (None, None),
        ("  ", None),
    ],
)
def test_phone_is_normalised_to_digits(value: object, expected: str | None) -> None:
    assert normalize_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "02-123-4567",  # landline
        "010-1234-567",  # too short
        "010-1234-56789",  # too long
        "+1 650 555 1234",  # another country
        "010-1234-5678 (엄마)",  # text
        1012345678.5,
        True,
        dt.date(2010, 1, 1),
    ],
)
def test_invalid_phones_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="phone"):
        normalize_phone(value)


# --- grades and schools ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, (None, 2)),
        (2.0, (None, 2)),
        ("3", (None, 3)),
        ("1학년", (None, 1)),
        ("중2", ("middle", 2)),
        ("중학교 3학년", ("middle", 3)),
        ("고1", ("high", 1)),
        ("고 3", ("high", 3)),
        (7, ("middle", 1)),
        (9, ("middle", 3)),
        (10, ("high", 1)),
        ("12", ("high", 3)),
        (None, None),
    ],
)
def test_grades_accept_level_relative_absolute_and_korean_forms(
    value: object, expected: tuple[str | None, int] | None
) -> None:
    assert normalize_grade(value) == expected


@pytest.mark.parametrize("value", [0, 4, 6, 13, "고4", "중0", "2.5", 2.5, "초3", True])
def test_grades_outside_middle_and_high_school_are_refused(value: object) -> None:
    # when
    outcome = normalize_row(raw(grade=value))

    # then
    assert failure_codes(outcome) == ["grade_invalid"]


def test_school_name_sets_the_level_and_the_matching_school_field() -> None:
    # when
    high = normalize_row(raw(school="휘문고", grade=2))
    middle = normalize_row(raw(school="대치중학교", grade="중3"))

    # then
    assert isinstance(high, StudentRow)
    assert isinstance(middle, StudentRow)
    assert (high.school_type, high.high_school, high.middle_school, high.grade) == (
        "high",
        "휘문고",
        None,
        2,
    )
    assert (middle.school_type, middle.middle_school, middle.high_school, middle.grade) == (
        "middle",
        "대치중학교",
        None,
        3,
    )


def test_school_grade_and_type_that_disagree_fail_the_row() -> None:
    # when
    outcome = normalize_row(raw(school="휘문고", grade="중2"))

    # then
    assert failure_codes(outcome) == ["school_level_conflict"]


def test_school_without_a_recognisable_level_fails_unless_the_type_column_says_it() -> None:
    # when
    unknown = normalize_row(raw(school="한빛학교"))
    typed = normalize_row(raw(school="한빛학교", school_type="고등학교"))

    # then
    assert failure_codes(unknown) == ["school_level_unknown"]
    assert isinstance(typed, StudentRow)
    assert (typed.school_type, typed.high_school) == ("high", "한빛학교")


def test_class_and_major_are_only_for_high_school_students() -> None:
    # when
    middle = normalize_row(raw(school="대치중", high_school_class="3"))
    high = normalize_row(raw(school="휘문고", high_school_class="3", major="이과"))

    # then
    assert failure_codes(middle) == ["high_school_only"]
    assert isinstance(high, StudentRow)
    assert (high.high_school_class, high.major) == ("3", "이과")


# --- names, genders, the rest ----------------------------------------------------------------


def test_names_are_trimmed_and_composed_so_mac_files_match() -> None:
    # given a name typed on macOS (decomposed Hangul) with stray spaces
    decomposed = "\u1112\u1169\u11bc\u1100\u1175\u11af\u1103\u1169\u11bc"  # 홍길동, NFD

    # when
    outcome = normalize_row(raw(name=f"  {decomposed}  "))

    # then
    assert isinstance(outcome, StudentRow)
    assert outcome.name == "홍길동"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("남", "M"), ("여자", "F"), ("M", "M"), ("f", "F"), ("Male", "M"), ("female", "F")],
)
def test_gender_accepts_korean_and_english(value: str, expected: str) -> None:
    outcome = normalize_row(raw(gender=value))
    assert isinstance(outcome, StudentRow)
    assert outcome.gender == expected


def test_every_problem_of_a_row_is_reported_with_korean_and_english_text() -> None:
    # given a row with several bad cells
    row = raw(name="", parent_phone="12-34", gender="?", grade=5, phone=CellError("#N/A"))

    # when
    outcome = normalize_row(row)

    # then
    assert failure_codes(outcome) == [
        "name_required",
        "parent_phone_invalid",
        "phone_invalid",
        "grade_invalid",
        "gender_invalid",
    ]
    as_dict = outcome.as_dict()  # type: ignore[union-attr]
    assert as_dict["row"] == 2
    assert as_dict["code"] == "name_required"
    assert "학부모 전화번호 형식이 올바르지 않습니다" in as_dict["reason"]
    assert "parent's phone number is not a valid" in as_dict["reason_en"]


def test_missing_parent_phone_and_overlong_values_are_reported() -> None:
    # when
    outcome = normalize_row(raw(parent_phone=None, name="가" * 51, memo="x" * 2001))

    # then
    assert failure_codes(outcome) == ["value_too_long", "parent_phone_required", "value_too_long"]


def test_dates_and_error_values_are_not_accepted_as_text() -> None:
    outcome = normalize_row(
        raw(name=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), school=CellError("#REF!"))
    )
    assert failure_codes(outcome) == ["cell_invalid", "cell_invalid"]


def test_blank_optional_cells_mean_not_given() -> None:
    # when
    outcome = normalize_row(raw(phone="  ", memo=None, gender="", grade=None, school=""))

    # then
    assert outcome == StudentRow(row_number=2, name="홍길동", parent_phone="01012345678")


# --- the whole file --------------------------------------------------------------------------


def test_duplicates_in_the_file_fail_with_the_first_row_number() -> None:
    # given the same student twice (written differently) and once more later
    rows = [
        raw(2, name="홍길동", parent_phone="010-1234-5678"),
        raw(3, name="김철수", parent_phone="010-1111-2222"),
        raw(4, name=" 홍길동", parent_phone=1012345678),
        raw(5, name="홍길동", parent_phone="+82 10 1234 5678"),
    ]

    # when
    validated = validate_rows(rows)

    # then
    assert [r.row_number for r in validated.rows] == [2, 3]
    assert [(f.row_number, f.code) for f in validated.failures] == [
        (4, "duplicate_in_file"),
        (5, "duplicate_in_file"),
    ]
    assert validated.failures[0].messages[0] == m.DUPLICATE_IN_FILE.format(first_row=2)
    assert "2행" in validated.failures[0].as_dict()["reason"]


def test_the_first_row_of_a_key_owns_it_even_when_it_fails_otherwise() -> None:
    # given a first row with a bad grade and a clean repeat of its key
    rows = [raw(2, grade=99), raw(3)]

    # when
    validated = validate_rows(rows)

    # then both are reported: the first for its grade, the second as its duplicate
    assert [(f.row_number, f.code) for f in validated.failures] == [
        (2, "grade_invalid"),
        (3, "duplicate_in_file"),
    ]
    assert validated.rows == []


def test_blank_rows_are_skipped_and_row_numbers_are_kept() -> None:
    # given
    rows = [raw(2), RawRow(3, {"name": None, "parent_phone": "  "}), raw(9, name="김철수")]

    # when
    validated = validate_rows(rows)

    # then
    assert [r.row_number for r in validated.rows] == [2, 9]
    assert validated.failures == []


# --- Unicode lookalikes (audit F13) -----------------------------------------------------------
ARABIC_INDIC_PHONE = "010\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"


@pytest.mark.parametrize(
    "phone",
    [
        ARABIC_INDIC_PHONE,
        "\uff10\uff11\uff10-\uff11\uff12\uff13\uff14-\uff15\uff16\uff17\uff18",  # fullwidth
        "010-1234-5678\u200b",  # a zero-width space pasted in
        "\ufeff010\u00a01234\u00a05678",  # a BOM and no-break spaces
        "010\u200e-1234-5678",  # a left-to-right mark
    ],
)
def test_F13_unicode_digits_and_invisible_characters_give_the_ascii_phone(phone: str) -> None:
    # when
    normalized = normalize_phone(phone)

    # then
    assert normalized == "01012345678"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("홍길동", "010-1234-5678"), ("홍길동", ARABIC_INDIC_PHONE)),
        (("홍길동", "010-1234-5678"), ("홍길동\u200b", "010-1234-5678")),
        (("홍길동", "010-1234-5678"), ("\ufeff홍\u200d길동", "01012345678")),
        (("홍 길동", "010-1234-5678"), ("홍\u3000길동", "010-1234-5678")),
    ],
)
def test_F13_lookalike_rows_are_duplicates_in_the_file(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    # given the same student twice, the second time with Unicode lookalikes
    rows = [
        raw(2, name=first[0], parent_phone=first[1]),
        raw(3, name=second[0], parent_phone=second[1]),
    ]

    # when
    validated = validate_rows(rows)

    # then one student, and the second row names the first
    assert len(validated.rows) == 1
    assert validated.rows[0].name == first[0]
    assert validated.rows[0].parent_phone == "01012345678"
    assert [f.row_number for f in validated.failures] == [3]
    assert validated.failures[0].messages[0] == m.DUPLICATE_IN_FILE.format(first_row=2)


def test_F13_invisible_characters_never_reach_a_stored_name() -> None:
    # when
    outcome = normalize_row(raw(name="\u200b홍길동\u200c", school="서울\u200b중"))

    # then
    assert isinstance(outcome, StudentRow)
    assert outcome.name == "홍길동"
    assert outcome.middle_school == "서울중"


def test_F13_a_header_with_invisible_characters_is_still_recognised() -> None:
    # when
    mapped = map_header(["\ufeff이름", "학부모\u200b 전화번호"])

    # then
    assert mapped.columns == {"name": 0, "parent_phone": 1}
