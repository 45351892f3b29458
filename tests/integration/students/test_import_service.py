"""The student import against PostgreSQL: every classification path and what gets written."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.hashers import check_password, make_password
from django.utils import timezone

from domains.students import services
from domains.students.errors import StudentsImportRejected, TenantNotFound
from domains.students.models import Parent, Student
from domains.students.services import students_import_rows
from domains.tenants.models import Tenant, TenantMembership, User
from tests.support.students import (
    COLUMNS,
    PASSWORD,
    RecordingProgress,
    many,
    rows,
    table_counts,
)

pytestmark = pytest.mark.django_db


def make_student(tenant: Tenant, name: str, parent_phone: str, **fields: object) -> Student:
    fields.setdefault("ps_number", f"9{Student.objects.count():05d}")
    return Student.objects.create(tenant=tenant, name=name, parent_phone=parent_phone, **fields)


def test_new_rows_create_students_users_memberships_and_parents(alpha: Tenant) -> None:
    # given a file with two new students of one parent
    data = rows(
        ("홍길동", "010-1234-5678", "010-9999-8888", "휘문고", "고2", "남", "수학 심화"),
        ("홍길순", 1012345678, None, "대치중", 1, "여", None),
    )

    # when
    result = students_import_rows(alpha.id, rows=data, initial_password=PASSWORD)

    # then
    assert result.counts() == {
        "created": 2,
        "restored": 0,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
    }
    first, second = Student.objects.filter(tenant=alpha).order_by("ps_number")
    assert (first.name, first.parent_phone, first.phone) == ("홍길동", "01012345678", "01099998888")
    assert (first.school_type, first.high_school, first.grade, first.gender) == (
        "high",
        "휘문고",
        2,
        "M",
    )
    assert (second.school_type, second.middle_school, second.grade) == ("middle", "대치중", 1)
    assert (first.ps_number, second.ps_number) == ("000001", "000002")
    assert first.user is not None
    assert second.user is not None
    assert first.user.username == "alpha-s000001"
    assert first.user.must_change_password
    assert check_password(PASSWORD, first.user.password)
    # hashed once for the whole import (ADR 0102)
    assert first.user.password == second.user.password
    roles = TenantMembership.objects.filter(tenant=alpha, user__in=[first.user, second.user])
    assert sorted(roles.values_list("role", flat=True)) == ["student", "student"]
    assert list(Parent.objects.filter(tenant=alpha).values_list("phone", flat=True)) == [
        "01012345678"
    ]
    assert result.as_dict()["committed_rows"] == [[2, 3]]


def test_an_active_student_with_changed_values_is_updated_and_others_are_unchanged(
    alpha: Tenant,
) -> None:
    # given two stored students
    changed = make_student(alpha, "홍길동", "01012345678", phone="01011110000", memo="기존")
    same = make_student(alpha, "김철수", "01022223333", grade=3, school_type="high")
    before = same.updated_at

    # when the file changes the first one's phone and repeats the second one as stored
    result = students_import_rows(
        alpha.id,
        rows=rows(
            ("홍길동", "010-1234-5678", "010-9999-8888", None, None, None, None),
            ("김철수", "010-2222-3333", None, None, "고3", None, None),
        ),
        initial_password=PASSWORD,
    )

    # then
    assert result.counts()["updated"] == 1
    assert result.counts()["unchanged"] == 1
    changed.refresh_from_db()
    same.refresh_from_db()
    assert changed.phone == "01099998888"
    assert changed.memo == "기존"  # a blank cell never erases
    assert same.updated_at == before
    assert result.as_dict()["changes"] == [
        {"row": 2, "name": "홍길동", "action": "update", "fields": ["phone"]}
    ]
    assert User.objects.filter(username__startswith="alpha-s").count() == 0


def test_a_soft_deleted_student_is_restored_with_its_account_and_the_rows_values(
    alpha: Tenant,
) -> None:
    # given a deleted student whose user lost the membership
    user = User.objects.create(username="old-account")
    deleted = make_student(
        alpha, "홍길동", "01012345678", user=user, grade=1, deleted_at=timezone.now()
    )

    # when it appears in a file again
    result = students_import_rows(
        alpha.id,
        rows=rows(("홍길동", "01012345678", None, None, 2, None, None)),
        initial_password=PASSWORD,
    )

    # then the same record is active again, with the new grade, and a membership
    assert result.counts()["restored"] == 1
    deleted.refresh_from_db()
    assert deleted.deleted_at is None
    assert deleted.grade == 2
    assert deleted.user_id == user.id
    assert TenantMembership.objects.filter(tenant=alpha, user=user, role="student").exists()
    assert Student.objects.filter(tenant=alpha).count() == 1


def test_a_restored_student_without_an_account_gets_one(alpha: Tenant) -> None:
    # given a deleted student whose user was removed
    deleted = make_student(
        alpha, "홍길동", "01012345678", ps_number="000777", deleted_at=timezone.now()
    )

    # when
    students_import_rows(alpha.id, rows=rows(("홍길동", "01012345678")), initial_password=PASSWORD)

    # then
    deleted.refresh_from_db()
    assert deleted.user is not None
    assert deleted.user.username == "alpha-s000777"
    assert deleted.user.must_change_password


def test_a_deleted_student_next_to_an_active_one_stays_deleted(alpha: Tenant) -> None:
    # given the same key once deleted and once active
    old = make_student(alpha, "홍길동", "01012345678", deleted_at=timezone.now())
    make_student(alpha, "홍길동", "01012345678")

    # when
    result = students_import_rows(
        alpha.id, rows=rows(("홍길동", "01012345678")), initial_password=PASSWORD
    )

    # then
    assert result.counts()["unchanged"] == 1
    old.refresh_from_db()
    assert old.deleted_at is not None


def test_failed_rows_are_reported_and_the_rest_is_imported(alpha: Tenant) -> None:
    # given one good row, one bad phone, one duplicate of the first
    data = rows(
        ("홍길동", "010-1234-5678"),
        ("김철수", "02-123-4567"),
        ("홍길동", "01012345678"),
    )

    # when
    result = students_import_rows(alpha.id, rows=data, initial_password=PASSWORD, columns=COLUMNS)

    # then
    as_dict = json.loads(json.dumps(result.as_dict()))
    assert as_dict["counts"]["created"] == 1
    assert as_dict["counts"]["failed"] == 2
    assert [(f["row"], f["code"]) for f in as_dict["failed_rows"]] == [
        (3, "parent_phone_invalid"),
        (4, "duplicate_in_file"),
    ]
    assert as_dict["failed_rows"][0]["reason"] == "학부모 전화번호 형식이 올바르지 않습니다."
    assert as_dict["failed_rows"][0]["values"][:2] == ["김철수", "02-123-4567"]
    assert "2행" in as_dict["failed_rows"][1]["reason"]


def test_a_dry_run_classifies_without_writing(alpha: Tenant, progress: RecordingProgress) -> None:
    # given one stored student to update, one deleted to restore, one bad row and one new
    make_student(alpha, "홍길동", "01012345678", grade=1)
    make_student(alpha, "김철수", "01022223333", deleted_at=timezone.now())
    before = table_counts()

    # when
    result = students_import_rows(
        alpha.id,
        rows=rows(
            ("홍길동", "01012345678", None, None, 2),
            ("김철수", "01022223333"),
            ("이영희", "01033334444"),
            ("박민수", "없음"),
        ),
        initial_password=PASSWORD,
        dry_run=True,
        progress=progress,
    )

    # then
    assert result.counts() == {
        "created": 1,
        "restored": 1,
        "updated": 1,
        "unchanged": 0,
        "failed": 1,
    }
    assert result.as_dict()["dry_run"] is True
    assert result.as_dict()["committed_rows"] == []
    assert [c["action"] for c in result.as_dict()["changes"]] == ["update", "restore"]
    assert table_counts() == before
    assert [call[0] for call in progress.calls] == ["classify", "classify"]


def test_a_second_tenant_with_the_same_students_is_untouched(alpha: Tenant, beta: Tenant) -> None:
    # given beta has the same student, deleted, and the same parent
    beta_student = make_student(beta, "홍길동", "01012345678", grade=1, deleted_at=timezone.now())
    Parent.objects.create(tenant=beta, phone="01012345678", name="beta parent")

    # when alpha imports that student twice (create, then update)
    students_import_rows(
        alpha.id, rows=rows(("홍길동", "01012345678", None, None, 2)), initial_password=PASSWORD
    )
    second = students_import_rows(
        alpha.id, rows=rows(("홍길동", "01012345678", None, None, 3)), initial_password=PASSWORD
    )

    # then alpha created and updated its own; beta's student stays deleted and unchanged
    assert second.counts()["updated"] == 1
    beta_student.refresh_from_db()
    assert (beta_student.deleted_at is not None, beta_student.grade) == (True, 1)
    assert Student.objects.filter(tenant=beta).count() == 1
    assert Parent.objects.get(tenant=beta).name == "beta parent"
    assert Student.objects.get(tenant=alpha).grade == 3


def test_importing_the_same_file_twice_creates_nothing_the_second_time(
    alpha: Tenant, progress: RecordingProgress
) -> None:
    # given
    data = many(30)
    students_import_rows(alpha.id, rows=data, initial_password=PASSWORD, chunk_size=7)

    # when
    again = students_import_rows(alpha.id, rows=data, initial_password=PASSWORD, progress=progress)

    # then
    assert again.counts()["unchanged"] == 30
    assert Student.objects.filter(tenant=alpha).count() == 30
    # nothing to write still ends at 100 %
    assert progress.calls[-1][:4] == ("write", 3, 3, 100.0)


def test_progress_is_reported_per_chunk(alpha: Tenant, progress: RecordingProgress) -> None:
    # given a tenant and a progress recorder (fixtures)
    # when 10 rows are written in chunks of 4
    students_import_rows(
        alpha.id, rows=many(10), initial_password=PASSWORD, chunk_size=4, progress=progress
    )

    # then
    writes = [call for call in progress.calls if call[0] == "write"]
    assert len(writes) == 1 + 3
    assert [call[3] for call in writes] == sorted(call[3] for call in writes)
    assert writes[-1][3] == 100.0
    assert writes[-1][4] == 0.0


def test_short_initial_password_is_refused_before_anything_is_read(alpha: Tenant) -> None:
    # given
    before = table_counts()

    # when
    with pytest.raises(StudentsImportRejected) as caught:
        students_import_rows(alpha.id, rows=many(3), initial_password="short")

    # then
    assert caught.value.code == "password_too_short"
    assert caught.value.message.ko == "초기 비밀번호는 8자 이상이어야 합니다."
    assert table_counts() == before


def test_an_unknown_tenant_is_refused(db: None) -> None:
    # given a tenant id that does not exist
    # when/then an import into it is refused
    with pytest.raises(TenantNotFound):
        students_import_rows(987654, rows=many(1), initial_password=PASSWORD)


def test_a_pre_hashed_initial_password_is_stored_as_given_and_not_hashed_again(
    alpha: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the hash the jobs API made once for this import (ADR 0102)
    encoded = make_password(PASSWORD)

    def no_hashing(*args: object, **kwargs: object) -> str:
        raise AssertionError("the importer must not hash a pre-hashed password")

    monkeypatch.setattr(services, "make_password", no_hashing)

    # when the import runs with it
    students_import_rows(alpha.id, rows=many(2), initial_password_hash=encoded)

    # then every new user stores exactly that hash
    users = Student.objects.filter(tenant=alpha).select_related("user")
    assert [s.user.password for s in users] == [encoded, encoded]
    assert all(check_password(PASSWORD, s.user.password) for s in users)


@pytest.mark.parametrize(
    ("password", "password_hash"),
    [("", "not-a-hash"), (PASSWORD, "pbkdf2_sha256$1$salt$hash"), ("", "!unusable")],
)
def test_a_pre_hashed_password_must_be_an_encoded_hash_and_alone(
    alpha: Tenant, password: str, password_hash: str
) -> None:
    # given an initial password and a hash together, or a hash that is none (the parameters)
    # when/then the import is refused
    with pytest.raises(ValueError, match="initial_password"):
        students_import_rows(
            alpha.id, rows=many(1), initial_password=password, initial_password_hash=password_hash
        )
