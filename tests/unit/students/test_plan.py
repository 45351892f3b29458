"""Classifying rows against stored students, and the shape of the result (pure)."""

from __future__ import annotations

import datetime as dt
import json

from domains.students.messages import GRADE_INVALID
from domains.students.plan import (
    Action,
    ExistingStudent,
    ImportResult,
    PlannedRow,
    chunked,
    classify,
    plan_import,
    row_ranges,
    username_for,
)
from domains.students.rows import RawRow, RowFailure, StudentRow, ValidatedRows

ROW = StudentRow(
    row_number=7,
    name="홍길동",
    parent_phone="01012345678",
    phone="01099998888",
    school_type="high",
    high_school="휘문고",
    grade=2,
    memo=None,
)
DELETED_AT = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def stored(
    student_id: int = 1,
    *,
    deleted_at: dt.datetime | None = None,
    user_id: int | None = 10,
    **values: object,
) -> ExistingStudent:
    base: dict[str, object] = {
        "phone": "01099998888",
        "school_type": "high",
        "high_school": "휘문고",
        "middle_school": "",
        "high_school_class": "",
        "major": "",
        "grade": 2,
        "gender": "",
        "memo": "기존 메모",
    }
    base.update(values)
    return ExistingStudent(
        id=student_id,
        name=ROW.name,
        parent_phone=ROW.parent_phone,
        user_id=user_id,
        ps_number=f"{student_id:06d}",
        deleted_at=deleted_at,
        values=base,
    )


def test_no_match_is_a_create() -> None:
    # given a row that matches no stored student
    # when/then it is planned as a create
    assert classify(ROW, []) == PlannedRow(Action.CREATE, ROW)


def test_an_active_match_with_the_same_given_values_is_unchanged() -> None:
    # given a stored memo that the row does not mention
    # when it is classified
    planned = classify(ROW, [stored()])

    # then the memo is left alone and nothing changes
    assert isinstance(planned, PlannedRow)
    assert planned.action is Action.UNCHANGED
    assert planned.changes == {}


def test_an_active_match_with_different_values_is_an_update_listing_the_changed_fields() -> None:
    # given a stored student whose phone and grade differ
    # when the row is classified
    planned = classify(ROW, [stored(phone="01000000000", grade=1)])

    # then
    assert isinstance(planned, PlannedRow)
    assert planned.action is Action.UPDATE
    assert planned.changed_fields == ("phone", "grade")
    assert planned.changes == {"phone": "01099998888", "grade": 2}
    assert (planned.student_id, planned.user_id) == (1, 10)


def test_a_blank_stored_value_differs_from_a_given_one() -> None:
    # given a stored student with a blank high school and no phone
    # when the row is classified
    planned = classify(ROW, [stored(high_school="", phone=None)])

    # then both fields count as changed
    assert isinstance(planned, PlannedRow)
    assert planned.changed_fields == ("phone", "high_school")


def test_only_soft_deleted_matches_restore_the_latest_one_with_the_rows_values() -> None:
    # given two deletions of the same student, the later with an old phone
    older = stored(1, deleted_at=DELETED_AT - dt.timedelta(days=30))
    latest = stored(2, deleted_at=DELETED_AT, phone="01000000000", user_id=None)

    # when
    planned = classify(ROW, [older, latest])

    # then
    assert isinstance(planned, PlannedRow)
    assert planned.action is Action.RESTORE
    assert (planned.student_id, planned.user_id, planned.ps_number) == (2, None, "000002")
    assert planned.changes == {"phone": "01099998888"}


def test_an_active_match_wins_over_soft_deleted_ones() -> None:
    # given a soft-deleted and an active student with the row's name and parent phone
    # when the row is classified
    planned = classify(ROW, [stored(1, deleted_at=DELETED_AT), stored(2)])

    # then the active one is kept as it is
    assert isinstance(planned, PlannedRow)
    assert (planned.action, planned.student_id) == (Action.UNCHANGED, 2)


def test_several_active_matches_fail_the_row() -> None:
    # given two active students that both match the row
    # when the row is classified
    outcome = classify(ROW, [stored(1), stored(2)])

    # then the row fails as ambiguous
    assert isinstance(outcome, RowFailure)
    assert outcome.code == "student_ambiguous"


def test_plan_groups_matches_by_key_and_keeps_file_order() -> None:
    # given three valid rows, one of them stored
    other = StudentRow(row_number=3, name="김철수", parent_phone="01011112222")
    third = StudentRow(row_number=9, name="이영희", parent_phone="01033334444")
    validated = ValidatedRows(rows=[other, ROW, third])

    # when
    plan = plan_import(validated, [stored(phone="01000000000")])

    # then
    assert [(p.row.row_number, p.action) for p in plan.planned] == [
        (3, Action.CREATE),
        (7, Action.UPDATE),
        (9, Action.CREATE),
    ]
    assert plan.count(Action.CREATE) == 2
    assert len(plan.writes()) == 3


def test_chunks_are_slices_in_order() -> None:
    # given five planned rows
    planned = [PlannedRow(Action.CREATE, ROW)] * 5

    # when/then they come in slices of two, in order
    assert [len(c) for c in chunked(planned, 2)] == [2, 2, 1]


def test_row_ranges_are_compact() -> None:
    # given row numbers out of order, with gaps
    # when/then they collapse into inclusive ranges
    assert row_ranges([5, 2, 3, 4, 9, 10, 12]) == [[2, 5], [9, 10], [12, 12]]
    assert row_ranges([]) == []


def test_usernames_are_tenant_code_and_student_number() -> None:
    # given a tenant code and a student number
    # when/then the username joins them
    assert username_for("alpha", "000042") == "alpha-s000042"


def test_result_is_json_with_counts_failures_original_values_and_committed_rows() -> None:
    # given a result with one create, one update and a failed row from the file
    columns = (("name", "이름"), ("parent_phone", "학부모 전화번호"), ("grade", "학년"))
    result = ImportResult(dry_run=False, total_rows=3, columns=columns)
    raw = RawRow(4, {"name": "박민수", "parent_phone": 1055556666.0, "grade": "초3"})
    updated = PlannedRow(Action.UPDATE, ROW, 1, 10, "000001", {"grade": 2})
    created = PlannedRow(Action.CREATE, StudentRow(2, "김철수", "01011112222"))

    # when
    result.record_done([created, updated])
    result.record_failures([RowFailure(4, "박민수", (GRADE_INVALID,))], {4: raw})
    as_dict = json.loads(json.dumps(result.as_dict()))

    # then
    assert as_dict["counts"] == {
        "created": 1,
        "restored": 0,
        "updated": 1,
        "unchanged": 0,
        "failed": 1,
    }
    assert as_dict["failed_rows"] == [
        {
            "row": 4,
            "name": "박민수",
            "code": "grade_invalid",
            "codes": ["grade_invalid"],
            "reason": GRADE_INVALID.ko,
            "reason_en": GRADE_INVALID.en,
            "values": ["박민수", 1055556666, "초3"],
        }
    ]
    assert as_dict["columns"] == ["이름", "학부모 전화번호", "학년"]
    assert as_dict["changes"] == [
        {"row": 7, "name": "홍길동", "action": "update", "fields": ["grade"]}
    ]
    assert as_dict["committed_rows"] == [[2, 2], [7, 7]]
