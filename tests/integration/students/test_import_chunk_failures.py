"""A chunk the database refuses is replayed row by row: the failure names its row, the other
rows of the chunk and the other chunks are committed.

The conflicts are real ones that validation cannot see: a login name or a student number
taken by something outside the import, a student created or deleted elsewhere between the
lookup and the write (made to happen at that moment through the progress port, which the
import calls right after classifying).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.utils import timezone

from domains.students.models import Student
from domains.students.services import students_import_rows
from domains.tenants.models import Tenant, TenantMembership, User
from tests.support.students import PASSWORD, many, rows

pytestmark = pytest.mark.django_db


def when_classified(action: Callable[[], None]) -> Callable[..., None]:
    """A progress port that runs ``action`` once, when classification has finished."""
    done = False

    def progress(
        step: str, step_index: int, step_total: int, percent: float, remaining: object
    ) -> None:
        nonlocal done
        if step == "classify" and percent == 30.0 and not done:
            done = True
            action()

    return progress


def test_a_taken_login_name_fails_only_its_row(alpha: Tenant) -> None:
    # given someone already has the login name the 3rd new student will get
    User.objects.create(username="alpha-s000003")

    # when 12 new students are imported in chunks of 5 (rows 2-6, 7-11, 12-13)
    result = students_import_rows(
        alpha.id, rows=many(12), initial_password=PASSWORD, chunk_size=5
    ).as_dict()

    # then row 4 (the 3rd row) failed with its login name, everything else committed
    assert result["counts"]["created"] == 11
    assert [(f["row"], f["code"]) for f in result["failed_rows"]] == [(4, "username_taken")]
    assert "alpha-s000003" in result["failed_rows"][0]["reason"]
    assert result["committed_rows"] == [[2, 3], [5, 13]]
    assert Student.objects.filter(tenant=alpha).count() == 11
    assert not Student.objects.filter(tenant=alpha, ps_number="000003").exists()
    # no orphan users or memberships from the rolled-back chunk
    assert User.objects.filter(username__startswith="alpha-s").count() == 1 + 11
    assert TenantMembership.objects.filter(tenant=alpha).count() == 11


def test_a_student_number_taken_outside_the_counter_fails_only_its_row(alpha: Tenant) -> None:
    # given the counter has issued 000001, then another path stored 000004 without it
    students_import_rows(alpha.id, rows=many(1), initial_password=PASSWORD)
    Student.objects.create(
        tenant=alpha, name="외부", parent_phone="01055550000", ps_number="000004"
    )

    # when 5 more students are imported (numbers 000002-000006) in one chunk
    result = students_import_rows(
        alpha.id, rows=many(5, start=1), initial_password=PASSWORD
    ).as_dict()

    # then the row that got 000004 (row 4) failed, the other four were created
    assert [(f["row"], f["code"]) for f in result["failed_rows"]] == [(4, "ps_number_taken")]
    assert "000004" in result["failed_rows"][0]["reason"]
    assert result["counts"]["created"] == 4


def test_a_student_created_elsewhere_during_the_import_fails_only_its_row(alpha: Tenant) -> None:
    # given a teacher registers 학생00001 by hand while the file is being imported
    def register_by_hand() -> None:
        Student.objects.create(
            tenant=alpha, name="학생00001", parent_phone="01090000001", ps_number="T-1"
        )

    # when
    result = students_import_rows(
        alpha.id,
        rows=many(3),
        initial_password=PASSWORD,
        progress=when_classified(register_by_hand),
    ).as_dict()

    # then
    assert [(f["row"], f["code"]) for f in result["failed_rows"]] == [(3, "student_exists")]
    assert result["counts"]["created"] == 2
    assert Student.objects.filter(tenant=alpha, name="학생00001").count() == 1


def test_a_student_deleted_elsewhere_before_its_update_fails_only_its_row(alpha: Tenant) -> None:
    # given two stored students the file updates
    students_import_rows(alpha.id, rows=many(2), initial_password=PASSWORD)
    gone = Student.objects.get(tenant=alpha, name="학생00000")

    def delete_elsewhere() -> None:
        Student.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())

    # when both get a new grade while one is deleted after the lookup
    changed = rows(
        ("학생00000", "01090000000", None, "대치중", 3),
        ("학생00001", "01090000001", None, "대치중", 3),
    )
    result = students_import_rows(
        alpha.id,
        rows=changed,
        initial_password=PASSWORD,
        progress=when_classified(delete_elsewhere),
    ).as_dict()

    # then
    assert [(f["row"], f["code"]) for f in result["failed_rows"]] == [(2, "student_changed")]
    assert result["counts"]["updated"] == 1
    gone.refresh_from_db()
    assert (gone.grade, gone.deleted_at is not None) == (2, True)
    assert Student.objects.get(tenant=alpha, name="학생00001").grade == 3
