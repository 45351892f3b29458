"""Job creation quotas: unfinished jobs per user and per tenant; messaging.send limited by role
per job and by a daily recipient budget (audit F23). 429 quota_exceeded with Retry-After."""

from __future__ import annotations

import uuid
from typing import Any

from django.test import override_settings

from domains.jobs import repository
from domains.jobs.models import Job
from tests.support.members import Member
from tests.support.security import JOBS_URL, bearer

PAYLOAD = {"subject": "Schedule change", "body": "Class starts at 10:00.", "recipients": []}


def _message(member: Member, recipients: int, **headers: str) -> Any:
    addresses = [f"parent{index}@example.com" for index in range(recipients)]
    body = {"job_type": "messaging.send", "payload": {**PAYLOAD, "recipients": addresses}}
    return bearer(member.access_token()).post(JOBS_URL, body, format="json", headers=headers)


def _unfinished(member: Member, count: int) -> None:
    for _ in range(count):
        repository.job_insert(
            member.tenant.id,
            job_type="messaging.send",
            payload={},
            created_by_id=member.user.id,
            idempotency_key="",
            job_id=uuid.uuid4(),
        )


@override_settings(JOB_ACTIVE_MAX_PER_USER=3, JOB_QUOTA_RETRY_AFTER=30)
def test_a_user_with_too_many_unfinished_jobs_gets_429(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given: alpha-staff has three unfinished jobs, beta-staff as many
    _unfinished(alpha_staff, 3)
    _unfinished(beta_staff, 2)

    # when: both start one more
    refused = _message(alpha_staff, 1)
    allowed = _message(beta_staff, 1)

    # then: alpha-staff is refused with the one error shape, beta-staff is not
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    assert refused.json()["code"] == "quota_exceeded"
    assert refused.json()["fields"] == {}
    assert "3 unfinished jobs" in refused.json()["detail"]
    assert allowed.status_code == 202
    assert Job.objects.filter(created_by=alpha_staff.user).count() == 3


@override_settings(JOB_ACTIVE_MAX_PER_USER=3)
def test_finished_jobs_do_not_count(alpha_staff: Member) -> None:
    # given: three jobs of alpha-staff, all finished
    _unfinished(alpha_staff, 3)
    Job.objects.filter(created_by=alpha_staff.user).update(status="DONE")

    # when: alpha-staff starts another
    response = _message(alpha_staff, 1)

    # then: accepted
    assert response.status_code == 202


@override_settings(JOB_ACTIVE_MAX_PER_USER=10, JOB_ACTIVE_MAX_PER_TENANT=4)
def test_a_tenant_with_too_many_unfinished_jobs_gets_429_other_tenants_do_not(
    alpha_staff: Member, alpha_teacher: Member, beta_staff: Member
) -> None:
    # given: alpha has four unfinished jobs from two users; beta has three
    _unfinished(alpha_staff, 2)
    _unfinished(alpha_teacher, 2)
    _unfinished(beta_staff, 3)

    # when: a third alpha user-to-be (the teacher) and beta-staff start one more, in Korean
    refused = _message(alpha_teacher, 1, **{"Accept-Language": "ko"})
    allowed = _message(beta_staff, 1)

    # then: alpha is at its tenant quota, beta is not
    assert refused.status_code == 429
    assert refused.json() == {
        "code": "quota_exceeded",
        "detail": "학원에 완료되지 않은 작업이 너무 많습니다. 잠시 후 다시 시도하세요.",
        "fields": {},
    }
    assert allowed.status_code == 202


@override_settings(JOB_ACTIVE_MAX_PER_USER=1)
def test_an_idempotent_replay_is_not_refused_by_the_quota(alpha_staff: Member) -> None:
    # given: one job created with an Idempotency-Key, which fills the quota
    first = _message(alpha_staff, 1, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 202

    # when: the same request is repeated, and a new one is tried
    replay = _message(alpha_staff, 1, **{"Idempotency-Key": "k-1"})
    other = _message(alpha_staff, 1, **{"Idempotency-Key": "k-2"})

    # then: the replay returns the first job; the new one is over the quota
    assert replay.status_code == 202
    assert replay.json()["job_id"] == first.json()["job_id"]
    assert other.status_code == 429


def test_F23_students_may_not_mail_at_all(alpha_student: Member) -> None:
    # given: a student of the academy
    # when: a student posts a messaging job
    response = _message(alpha_student, 1)

    # then: refused by role, nothing stored
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Job.objects.filter(created_by=alpha_student.user).exists()


@override_settings(MESSAGING_TEACHER_MAX_RECIPIENTS=5)
def test_F23_a_teacher_reaches_a_class_per_job_not_the_whole_academy(
    alpha_teacher: Member, alpha_staff: Member
) -> None:
    # given: a teacher limited to five recipients a job, and a staff member
    # when: a teacher mails six addresses, and staff mails the same six
    teacher = _message(alpha_teacher, 6)
    staff = _message(alpha_staff, 6)

    # then: the teacher's request is invalid for the role; staff's is accepted
    assert teacher.status_code == 400
    assert teacher.json()["code"] == "invalid"
    assert teacher.json()["fields"] == {
        "payload": {"recipients": ["A teacher may send to at most 5 recipients per job."]}
    }
    assert staff.status_code == 202
    assert not Job.objects.filter(created_by=alpha_teacher.user).exists()


@override_settings(
    MESSAGING_DAILY_RECIPIENTS={"teacher": 10, "staff": 100, "admin": 100},
    MESSAGING_TEACHER_MAX_RECIPIENTS=50,
)
def test_F23_a_teachers_daily_recipient_budget_is_counted_and_refused_with_429(
    alpha_teacher: Member, beta_teacher: Member
) -> None:
    # given: alpha's teacher mailed eight recipients today
    assert _message(alpha_teacher, 8).status_code == 202

    # when: they mail three more; beta's teacher mails eight
    refused = _message(alpha_teacher, 3)
    beta = _message(beta_teacher, 8)
    fits = _message(alpha_teacher, 2)

    # then: alpha's teacher is over the day's ten, with a Retry-After until midnight UTC;
    # beta counts apart; what still fits is accepted
    assert refused.status_code == 429
    assert refused.json()["code"] == "quota_exceeded"
    assert 1 <= int(refused["Retry-After"]) <= 86400
    assert "10 message recipients" in refused.json()["detail"]
    assert beta.status_code == 202
    assert fits.status_code == 202


@override_settings(
    MESSAGING_DAILY_RECIPIENTS={"teacher": 100, "staff": 100, "admin": 100},
    MESSAGING_TENANT_DAILY_RECIPIENTS=12,
)
def test_F23_the_tenant_daily_budget_caps_all_senders_together(
    alpha_teacher: Member, alpha_staff: Member, beta_staff: Member
) -> None:
    # given: alpha's teacher mailed ten recipients today
    assert _message(alpha_teacher, 10).status_code == 202

    # when: alpha's staff mails five, beta's staff mails ten
    refused = _message(alpha_staff, 5)
    beta = _message(beta_staff, 10)

    # then: alpha's tenant budget (12) is spent; beta's is not
    assert refused.status_code == 429
    assert refused.json()["detail"] == (
        "Your academy has reached today's limit of message recipients."
    )
    assert beta.status_code == 202
