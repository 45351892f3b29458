"""Fixtures of the list endpoints: members of every role, rows made at chosen times, and the
100,000-row tenants of the EXPLAIN tests.

Rows are made through the ORM (tests sit outside the repository contract) with ``created_at``
set afterwards, since ``auto_now_add`` ignores a given value.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from pytest_django.plugin import DjangoDbBlocker

from domains.jobs.models import Job, JobStatus
from domains.tenants import repository as tenants
from domains.tenants.models import Tenant
from domains.videos.models import Video, VideoStatus
from realtime.identity import Role
from tests.conftest import PASSWORD, Member

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
PLAN_TENANTS = 4
PLAN_ROWS_PER_TENANT = 25_000
PLAN_USERS_PER_TENANT = 100
PLAN_SESSIONS_PER_TENANT = 500


@dataclass(frozen=True)
class PlanData:
    """Committed rows over several tenants, analysed; removed again after the module."""

    tenant_ids: list[int]
    # One user of the first tenant (a teacher's "own" list).
    owner_id: int
    # A session of the first tenant.
    session_id: int


# Status mixes of a tenant with history: most rows finished, a few running (mod(i, 1000)).
_JOB_STATUS_SQL = f"""CASE
    WHEN mod(i, 1000) < 2 THEN '{JobStatus.PENDING}'
    WHEN mod(i, 1000) < 6 THEN '{JobStatus.PROCESSING}'
    WHEN mod(i, 1000) < 56 THEN '{JobStatus.FAILED}'
    ELSE '{JobStatus.DONE}' END"""
_VIDEO_STATUS_SQL = f"""CASE
    WHEN mod(i, 1000) < 2 THEN '{VideoStatus.UPLOADED}'
    WHEN mod(i, 1000) < 6 THEN '{VideoStatus.PROCESSING}'
    WHEN mod(i, 1000) < 56 THEN '{VideoStatus.FAILED}'
    ELSE '{VideoStatus.READY}' END"""


@pytest.fixture(scope="module")
def plan_data(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[PlanData]:
    with django_db_blocker.unblock():
        tenant_ids = [
            Tenant.objects.create(code=f"plan-{n}", name=f"Plan {n}").id
            for n in range(PLAN_TENANTS)
        ]
        with connection.cursor() as cursor:
            for index, tenant_id in enumerate(tenant_ids):
                _seed_tenant(cursor, tenant_id, index)
            cursor.execute("ANALYZE tenants_user")
            cursor.execute("ANALYZE jobs_job")
            cursor.execute("ANALYZE videos_video")
            cursor.execute(
                "SELECT min(created_by_id) FROM jobs_job WHERE tenant_id = %s", [tenant_ids[0]]
            )
            owner_id = cursor.fetchone()[0]
        try:
            yield PlanData(tenant_ids=tenant_ids, owner_id=owner_id, session_id=1)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM jobs_job WHERE tenant_id = ANY(%s)", [tenant_ids])
                cursor.execute("DELETE FROM videos_video WHERE tenant_id = ANY(%s)", [tenant_ids])
                cursor.execute("DELETE FROM tenants_user WHERE username LIKE 'plan-%%'")
                cursor.execute("DELETE FROM tenants_tenant WHERE id = ANY(%s)", [tenant_ids])


def _seed_tenant(cursor: object, tenant_id: int, index: int) -> None:
    """Users, jobs and videos of one tenant in three INSERT … SELECT generate_series."""
    cursor.execute(  # type: ignore[attr-defined]
        """
        INSERT INTO tenants_user (password, is_superuser, username, first_name, last_name,
            email, is_staff, is_active, date_joined, must_change_password)
        SELECT '!', false, 'plan-' || %(index)s || '-' || u, '', '', '', false, true, now(),
            false
        FROM generate_series(1, %(users)s) AS u
        """,
        {"index": index, "users": PLAN_USERS_PER_TENANT},
    )
    owners = "(SELECT array_agg(id ORDER BY id) FROM tenants_user WHERE username LIKE %(like)s)"
    params = {
        "tenant": tenant_id,
        "rows": PLAN_ROWS_PER_TENANT,
        "users": PLAN_USERS_PER_TENANT,
        "like": f"plan-{index}-%",
        "sessions": PLAN_SESSIONS_PER_TENANT,
        # Tenants interleave in time, as real ones do.
        "offset": index,
    }
    cursor.execute(  # type: ignore[attr-defined]
        f"""
        INSERT INTO jobs_job (job_id, tenant_id, job_type, status, payload, attempt, lease_owner,
            idempotency_key, error, created_by_id, created_at, updated_at)
        SELECT gen_random_uuid(), %(tenant)s,
            CASE WHEN mod(i, 10) < 3 THEN 'excel_import' ELSE 'messaging.send' END,
            {_JOB_STATUS_SQL},
            jsonb_build_object('subject', 'notice ' || i, 'body', repeat('x', 200)),
            1, '', '', '', owners[1 + mod(i * 7, %(users)s)],
            timestamptz '2026-01-01' + (i * 4 + %(offset)s) * interval '1 second',
            timestamptz '2026-01-01' + (i * 4 + %(offset)s) * interval '1 second'
        FROM generate_series(1, %(rows)s) AS i, {owners} AS o(owners)
        """,
        params,
    )
    cursor.execute(  # type: ignore[attr-defined]
        f"""
        INSERT INTO videos_video (video_id, tenant_id, session_id, status, file_key, hls_path,
            error, attempt, lease_owner, created_by_id, created_at, updated_at)
        SELECT gen_random_uuid(), %(tenant)s, 1 + %(offset)s * 100000 + mod(i, %(sessions)s),
            {_VIDEO_STATUS_SQL},
            'uploads/' || i || '/source', '', '', 1, '', owners[1 + mod(i * 7, %(users)s)],
            timestamptz '2026-01-01' + (i * 4 + %(offset)s) * interval '1 second',
            timestamptz '2026-01-01' + (i * 4 + %(offset)s) * interval '1 second'
        FROM generate_series(1, %(rows)s) AS i, {owners} AS o(owners)
        """,
        params,
    )
