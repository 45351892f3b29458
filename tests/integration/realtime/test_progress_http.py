"""GET …/progress/ (Redis only, zero SQL) and GET …/{id}/ (the record, tenant-scoped)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import AsyncClient, Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains.jobs.models import Job, JobResult
from domains.videos.models import Video
from project import devservices
from realtime import clients, store
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.conftest import Member
from tests.integration.realtime.conftest import make_token


def _bearer(member: Member) -> dict[str, str]:
    """An access token for the member, made without the database (async tests may not query)."""
    token = make_token(tenant_id=member.tenant.id, user_id=member.user.id, role=member.role.value)
    return {"Authorization": f"Bearer {token}"}


def _job(member: Member, **extra: Any) -> Job:
    return Job.objects.create(
        tenant=member.tenant, job_type="demo", created_by=member.user, **extra
    )


def test_progress_is_the_state_document_with_zero_sql(
    client: Client, alpha_staff: Member, django_assert_num_queries: Any
) -> None:
    # The sync client runs the async view; an ORM call there would raise (async context) or go
    # through sync_to_async to this thread's connection, which the assertion watches.
    topic = Topic.job(uuid.uuid4())
    tid, owner = alpha_staff.tenant.id, alpha_staff.user.id
    store.publish(tid, topic, Change(status="PENDING", owner_id=owner, job_type="demo"))
    store.publish(tid, topic, Change(status="PROCESSING", attempt=1, progress=Progress(percent=42)))
    headers = _bearer(alpha_staff)

    with django_assert_num_queries(0):
        response = client.get(f"/api/v1/jobs/{topic.id}/progress/", headers=headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert (body["topic"], body["seq"], body["status"]) == (str(topic), 2, "PROCESSING")
    assert body["progress"]["percent"] == 42
    assert "type" not in body


def test_video_progress_works_the_same_way(
    client: Client, alpha_staff: Member, django_assert_num_queries: Any
) -> None:
    topic = Topic.video(uuid.uuid4())
    store.publish(
        alpha_staff.tenant.id, topic, Change(status="UPLOADED", owner_id=alpha_staff.user.id)
    )
    headers = _bearer(alpha_staff)

    with django_assert_num_queries(0):
        response = client.get(f"/media/videos/{topic.id}/progress/", headers=headers)

    assert response.status_code == 200
    assert json.loads(response.content)["status"] == "UPLOADED"


@pytest.mark.django_db
async def test_nothing_in_redis_is_404_not_found(
    async_client: AsyncClient, alpha_staff: Member
) -> None:
    response = await async_client.get(
        f"/api/v1/jobs/{uuid.uuid4()}/progress/", headers=_bearer(alpha_staff)
    )

    assert response.status_code == 404
    assert json.loads(response.content)["code"] == "not_found"


@pytest.mark.django_db
async def test_another_tenants_job_is_404(
    async_client: AsyncClient, alpha_staff: Member, beta_staff: Member
) -> None:
    topic = Topic.job(uuid.uuid4())
    await store.apublish(
        alpha_staff.tenant.id, topic, Change(status="PENDING", owner_id=alpha_staff.user.id)
    )

    response = await async_client.get(
        f"/api/v1/jobs/{topic.id}/progress/", headers=_bearer(beta_staff)
    )

    assert response.status_code == 404


@pytest.mark.django_db
async def test_a_student_sees_only_their_own_jobs(
    async_client: AsyncClient, alpha_staff: Member, alpha_student: Member
) -> None:
    mine, theirs = Topic.job(uuid.uuid4()), Topic.job(uuid.uuid4())
    tid = alpha_student.tenant.id
    await store.apublish(tid, mine, Change(status="PENDING", owner_id=alpha_student.user.id))
    await store.apublish(tid, theirs, Change(status="PENDING", owner_id=alpha_staff.user.id))
    headers = _bearer(alpha_student)

    own = await async_client.get(f"/api/v1/jobs/{mine.id}/progress/", headers=headers)
    other = await async_client.get(f"/api/v1/jobs/{theirs.id}/progress/", headers=headers)

    assert (own.status_code, other.status_code) == (200, 404)


@pytest.mark.django_db
async def test_no_or_bad_token_is_401(async_client: AsyncClient) -> None:
    missing = await async_client.get(f"/api/v1/jobs/{uuid.uuid4()}/progress/")
    bad = await async_client.get(
        f"/api/v1/jobs/{uuid.uuid4()}/progress/", headers={"Authorization": "Bearer x.y.z"}
    )

    assert (missing.status_code, bad.status_code) == (401, 401)
    assert json.loads(missing.content)["code"] == "not_authenticated"


@pytest.mark.django_db
async def test_redis_down_is_503_with_retry_after(
    async_client: AsyncClient, alpha_staff: Member
) -> None:
    headers = _bearer(alpha_staff)
    clients.reset_clients()
    try:
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{devservices.free_port()}/0"):
            response = await async_client.get(
                f"/api/v1/jobs/{uuid.uuid4()}/progress/", headers=headers
            )
    finally:
        clients.reset_clients()

    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert json.loads(response.content)["code"] == "unavailable"


# --- detail: the database record ------------------------------------------------------------
def test_job_detail_is_the_record_with_its_result(client: Client, alpha_staff: Member) -> None:
    # A finished job whose terminal state reached Redis once (Redis has since lost it: the
    # read rebuilds it, and no outbox mark is written again).
    job = _job(
        alpha_staff,
        status="DONE",
        attempt=1,
        payload={"big": "x" * 1000},
        terminal_published_at=timezone.now(),
    )
    JobResult.objects.create(job=job, data={"sent": 3})

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/v1/jobs/{job.job_id}/", headers=_bearer(alpha_staff))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["result"], body["topic"]) == (
        "DONE",
        {"sent": 3},
        f"job:{job.job_id}",
    )
    assert body["progress_url"] == f"/api/v1/jobs/{job.job_id}/progress/"
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert '"payload"' not in queries[0]["sql"]  # only the columns the response needs


def test_job_detail_of_another_tenant_or_user_is_404(
    client: Client, alpha_staff: Member, alpha_student: Member, beta_staff: Member
) -> None:
    job = _job(alpha_staff)

    foreign = client.get(f"/api/v1/jobs/{job.job_id}/", headers=_bearer(beta_staff))
    not_owner = client.get(f"/api/v1/jobs/{job.job_id}/", headers=_bearer(alpha_student))

    assert (foreign.status_code, not_owner.status_code) == (404, 404)
    assert foreign.json()["code"] == "not_found"


def test_video_detail_is_tenant_scoped(
    client: Client, alpha_staff: Member, beta_staff: Member
) -> None:
    video = Video.objects.create(
        tenant=alpha_staff.tenant,
        session_id=5,
        file_key="raw/v.mp4",
        status="READY",
        hls_path="hls/v/index.m3u8",
        duration=12.5,
        created_by=alpha_staff.user,
    )

    own = client.get(f"/media/videos/{video.video_id}/", headers=_bearer(alpha_staff))
    foreign = client.get(f"/media/videos/{video.video_id}/", headers=_bearer(beta_staff))

    assert own.status_code == 200
    assert (own.json()["hls_path"], own.json()["duration"]) == ("hls/v/index.m3u8", 12.5)
    assert foreign.status_code == 404


def test_seed_indexes_exist(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('jobs_job', 'videos_video')"
        )
        names = {row[0] for row in cursor.fetchall()}

    assert {
        "job_tenant_status_idx",
        "job_tenant_jobid_idx",
        "video_tenant_status_idx",
        "video_session_status_idx",
    } <= names
