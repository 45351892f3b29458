"""Fixtures of the list endpoints: members of every role, rows made at chosen times, and the
100,000-row tenants of the EXPLAIN tests (seed.py).

Rows are made through the ORM (tests sit outside the repository contract) with ``created_at``
set afterwards, since ``auto_now_add`` ignores a given value.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pytest_django.plugin import DjangoDbBlocker

from domains.jobs.models import Job, JobStatus
from domains.tenants import repository as tenants
from domains.tenants.models import Tenant
from domains.videos.models import Video, VideoStatus
from realtime.identity import Role
from tests.conftest import PASSWORD, Member
from tests.integration.lists import seed
from tests.integration.lists.seed import Seeded

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _member(tenant: Tenant, username: str, role: Role) -> Member:
    user = tenants.member_upsert(tenant.id, username=username, password=PASSWORD, role=role)
    return Member(tenant=tenant, user=user, role=role)


@pytest.fixture
def alpha_teacher(alpha: Tenant) -> Member:
    return _member(alpha, "alpha-teacher", Role.TEACHER)


@pytest.fixture
def alpha_teacher_2(alpha: Tenant) -> Member:
    return _member(alpha, "alpha-teacher-2", Role.TEACHER)


@pytest.fixture
def alpha_admin(alpha: Tenant) -> Member:
    return _member(alpha, "alpha-admin", Role.ADMIN)


MakeJob = Callable[..., Job]
MakeVideo = Callable[..., Video]


@pytest.fixture
def make_job(db: None) -> MakeJob:
    """A job of ``owner`` created ``minutes`` after T0 (or at ``created_at``)."""

    def make(
        owner: Member,
        *,
        minutes: float = 0,
        status: str = JobStatus.PENDING,
        job_type: str = "messaging.send",
        created_at: datetime | None = None,
    ) -> Job:
        job = Job.objects.create(
            tenant=owner.tenant,
            job_type=job_type,
            status=status,
            payload={"subject": "s", "body": "b", "recipients": ["a@example.com"]},
            error="secret error text" if status == JobStatus.FAILED else "",
            created_by=owner.user,
        )
        job.created_at = created_at or T0 + timedelta(minutes=minutes)
        Job.objects.filter(pk=job.pk).update(created_at=job.created_at)
        return job

    return make


@pytest.fixture
def make_video(db: None) -> MakeVideo:
    """A video of ``owner`` in ``session_id`` created ``minutes`` after T0."""

    def make(
        owner: Member,
        *,
        session_id: int = 1,
        minutes: float = 0,
        status: str = VideoStatus.UPLOADED,
        created_at: datetime | None = None,
    ) -> Video:
        video = Video.objects.create(
            tenant=owner.tenant,
            session_id=session_id,
            status=status,
            file_key=f"uploads/{owner.tenant.id}/{uuid.uuid4()}/source",
            created_by=owner.user,
        )
        video.created_at = created_at or T0 + timedelta(minutes=minutes)
        Video.objects.filter(pk=video.pk).update(created_at=video.created_at)
        return video

    return make


# --- 100,000 rows for the EXPLAIN tests -----------------------------------------------------
@pytest.fixture(scope="module")
def plan_data(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[Seeded]:
    """The seed (tests/integration/lists/seed.py), committed for the module, then removed."""
    with django_db_blocker.unblock():
        seed.unseed()  # what an interrupted earlier run left
        data = seed.seed()
        try:
            yield data
        finally:
            seed.unseed()
