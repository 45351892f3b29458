"""100,000 jobs and 100,000 videos over four tenants, for the EXPLAIN tests and the list
benchmark (bench/lists/): a support module, not a test module.

Each tenant gets 100 users, 25,000 jobs and 25,000 videos in three ``INSERT … SELECT
generate_series`` statements, a few seconds in all. The mix is a tenant with history: most
items finished, about 0.2 % waiting and 0.4 % running, 5 % failed; 30 % of the jobs are
Excel imports; videos spread over 500 sessions (50 a session); tenants interleave in time.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from domains.jobs.models import JobStatus
from domains.tenants.models import Tenant
from domains.videos.models import VideoStatus

TENANTS = 4
ROWS_PER_TENANT = 25_000
USERS_PER_TENANT = 100
SESSIONS_PER_TENANT = 500
CODE_PREFIX = "plan-"


@dataclass(frozen=True)
class Seeded:
    tenant_ids: list[int]
    # The first user of the first tenant: the owner of a teacher's "own" list.
    owner_id: int
    # A session of the first tenant.
    session_id: int


def _status_case(pending: str, running: str, failed: str, finished: str) -> str:
    return f"""CASE
        WHEN mod(i, 1000) < 2 THEN '{pending}'
        WHEN mod(i, 1000) < 6 THEN '{running}'
        WHEN mod(i, 1000) < 56 THEN '{failed}'
        ELSE '{finished}' END"""


_USERS_INSERT = """
    INSERT INTO tenants_user (password, is_superuser, username, first_name, last_name, email,
        is_staff, is_active, date_joined, must_change_password)
    SELECT '!', false, %(prefix)s || u, '', '', '', false, true, now(), false
    FROM generate_series(1, %(users)s) AS u
"""
_OWNERS = "(SELECT array_agg(id ORDER BY id) FROM tenants_user WHERE username LIKE %(like)s)"
_CREATED = "timestamptz '2026-01-01' + (i * 4 + %(offset)s) * interval '1 second'"
_JOBS_INSERT = f"""
    INSERT INTO jobs_job (job_id, tenant_id, job_type, status, payload, attempt, lease_owner,
        idempotency_key, error, created_by_id, created_at, updated_at)
    SELECT gen_random_uuid(), %(tenant)s,
        CASE WHEN mod(i, 10) < 3 THEN 'excel_import' ELSE 'messaging.send' END,
        {_status_case(JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.FAILED, JobStatus.DONE)},
        jsonb_build_object('subject', 'notice ' || i, 'body', repeat('x', 200)),
        1, '', '', '', owners[1 + mod(i * 7, %(users)s)], {_CREATED}, {_CREATED}
    FROM generate_series(1, %(rows)s) AS i, {_OWNERS} AS o(owners)
"""  # noqa: S608 (module constants; every value is a parameter)
_VIDEOS_INSERT = f"""
    INSERT INTO videos_video (video_id, tenant_id, session_id, status, file_key, hls_path,
        error, attempt, lease_owner, created_by_id, created_at, updated_at)
    SELECT gen_random_uuid(), %(tenant)s, 1 + %(offset)s * 100000 + mod(i, %(sessions)s),
        {
    _status_case(
        VideoStatus.UPLOADED, VideoStatus.PROCESSING, VideoStatus.FAILED, VideoStatus.READY
    )
},
        'uploads/' || i || '/source', '', '', 1, '', owners[1 + mod(i * 7, %(users)s)],
        {_CREATED}, {_CREATED}
    FROM generate_series(1, %(rows)s) AS i, {_OWNERS} AS o(owners)
"""  # noqa: S608 (module constants; every value is a parameter)


def seed(rows_per_tenant: int = ROWS_PER_TENANT) -> Seeded:
    """Insert and ANALYZE (committed: call with the database unblocked, outside a test's
    transaction); :func:`unseed` removes it all again."""
    tenant_ids = [
        Tenant.objects.create(code=f"{CODE_PREFIX}{n}", name=f"Plan {n}").id for n in range(TENANTS)
    ]
    with connection.cursor() as cursor:
        for index, tenant_id in enumerate(tenant_ids):
            prefix = f"{CODE_PREFIX}{index}-"
            params = {
                "prefix": prefix,
                "like": f"{prefix}%",
                "tenant": tenant_id,
                "rows": rows_per_tenant,
                "users": USERS_PER_TENANT,
                "sessions": SESSIONS_PER_TENANT,
                "offset": index,
            }
            cursor.execute(_USERS_INSERT, params)
            cursor.execute(_JOBS_INSERT, params)
            cursor.execute(_VIDEOS_INSERT, params)
        for table in ("tenants_user", "jobs_job", "videos_video"):
            cursor.execute(f"ANALYZE {table}")
        cursor.execute(
            "SELECT min(id) FROM tenants_user WHERE username LIKE %s", [f"{CODE_PREFIX}0-%"]
        )
        (owner_id,) = cursor.fetchone()
    return Seeded(tenant_ids=tenant_ids, owner_id=owner_id, session_id=1)


def unseed() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(array_agg(id), '{}') FROM tenants_tenant WHERE code LIKE %s",
            [f"{CODE_PREFIX}%"],
        )
        (tenant_ids,) = cursor.fetchone()
        cursor.execute("DELETE FROM jobs_job WHERE tenant_id = ANY(%s)", [tenant_ids])
        cursor.execute("DELETE FROM videos_video WHERE tenant_id = ANY(%s)", [tenant_ids])
        cursor.execute("DELETE FROM tenants_user WHERE username LIKE %s", [f"{CODE_PREFIX}%"])
        cursor.execute("DELETE FROM tenants_tenant WHERE id = ANY(%s)", [tenant_ids])
