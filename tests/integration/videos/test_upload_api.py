"""POST /media/videos/ and complete-upload against moto's S3 and SQS, real PostgreSQL and Redis."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import override_settings

from domains.common.aws import s3_client
from domains.jobs import repository as jobs_repository
from domains.jobs.models import Job
from domains.videos.models import Video
from realtime import store
from realtime.keys import Topic
from tests.integration.videos.support import (
    object_keys,
    put_upload,
    register,
    video_queue_bodies,
    video_row,
)
from tests.support.members import Member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("video_aws")]
DATA = b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000


def test_a_teacher_registers_an_upload_and_gets_a_presigned_put_under_the_tenant(
    alpha_teacher: Member,
) -> None:
    # given a teacher
    client = alpha_teacher.client()

    # when the upload is registered
    response = register(client, size=len(DATA))

    # then a PENDING_UPLOAD row answers with a presigned PUT to the tenant's source key
    assert response.status_code == 201, response.json()
    body = response.json()
    video = video_row(body["video_id"])
    key = f"uploads/{alpha_teacher.tenant.id}/{video.video_id}/source"
    assert video.status == "PENDING_UPLOAD"
    assert video.file_key == key
    assert f"/{key}?" in body["upload_url"]
    assert "X-Amz-Expires=900" in body["upload_url"]
    assert body["upload_headers"] == {"Content-Type": "video/mp4"}
    assert body["topic"] == f"video:{video.video_id}"
    assert body["detail_url"] == f"/media/videos/{video.video_id}/"
    assert body["progress_url"] == f"/media/videos/{video.video_id}/progress/"
    assert body["expires_at"]
    assert response["Location"] == body["detail_url"]
    # and the browser's PUT lands there
    assert put_upload(body, DATA) == 200
    assert object_keys(key) == [key]


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"size": 0}, {"size"}),
        ({"size": 2049}, {"size"}),
        (
            {"content_type": "application/pdf", "filename": "notes.pdf"},
            {"content_type", "filename"},
        ),
        ({"content_type": "video/webm", "filename": "lecture.mp4"}, {"filename"}),
        ({"content_type": "video/x-msvideo", "filename": "old.avi"}, {"content_type", "filename"}),
    ],
)
@override_settings(VIDEO_UPLOAD_MAX_BYTES=2048)
def test_an_upload_over_the_limits_is_refused_with_fields_and_nothing_is_written(
    alpha_teacher: Member, fields: dict[str, object], refused: set[str]
) -> None:
    # given the upload limits (2 KiB here) and a request breaking some
    request = {"size": 1000, "filename": "lecture.mp4", "content_type": "video/mp4", **fields}

    # when it is registered
    response = register(alpha_teacher.client(), **request)  # type: ignore[arg-type]

    # then it is a 400 naming the fields, and no row exists
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["fields"]) == refused
    assert not Video.objects.exists()


@pytest.mark.parametrize("extension", ["mp4", "mov", "webm", "mkv"])
def test_each_accepted_type_registers(alpha_teacher: Member, extension: str) -> None:
    # given a file of each accepted kind
    types = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}
    content_type = types.get(extension, "video/x-matroska")

    # when it is registered
    response = register(
        alpha_teacher.client(),
        size=10,
        filename=f"a.{extension.upper()}",
        content_type=content_type,
    )

    # then it is accepted
    assert response.status_code == 201, response.json()


def test_a_student_cannot_register_an_upload(alpha_student: Member) -> None:
    # given a student
    # when they try to register an upload
    response = register(alpha_student.client(), size=10)

    # then it is refused and nothing is written
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Video.objects.exists()


def test_complete_upload_before_the_put_is_refused_and_changes_nothing(
    alpha_teacher: Member,
) -> None:
    # given a registered upload whose file never arrived
    client = alpha_teacher.client()
    video_id = register(client, size=len(DATA)).json()["video_id"]

    # when the upload is declared complete
    response = client.post(f"/media/videos/{video_id}/complete-upload/")

    # then it is refused, the video still waits and nothing is queued
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"upload"}
    assert video_row(video_id).status == "PENDING_UPLOAD"
    assert video_queue_bodies() == []


def test_complete_upload_with_another_size_than_declared_is_refused(
    alpha_teacher: Member,
) -> None:
    # given an object whose size differs from the declared one
    client = alpha_teacher.client()
    video = video_row(register(client, size=len(DATA)).json()["video_id"])
    s3_client().put_object(Bucket="academy-videos", Key=video.file_key, Body=DATA[:100])

    # when the upload is declared complete
    response = client.post(f"/media/videos/{video.video_id}/complete-upload/")

    # then the size is the problem, and nothing changed
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"size"}
    assert video_row(video.video_id).status == "PENDING_UPLOAD"
    assert video_queue_bodies() == []


def test_complete_upload_marks_uploaded_publishes_and_queues_once(
    alpha_teacher: Member,
) -> None:
    # given an uploaded file
    client = alpha_teacher.client()
    body = register(client, size=len(DATA)).json()
    assert put_upload(body, DATA) == 200
    url = f"/media/videos/{body['video_id']}/complete-upload/"

    # when the upload is declared complete, twice
    first = client.post(url)
    second = client.post(url)

    # then the video is UPLOADED with one encode job and one message, and Redis shows UPLOADED
    assert first.status_code == 202, first.json()
    assert second.status_code == 202
    assert first.json()["status"] == second.json()["status"] == "UPLOADED"
    video = video_row(body["video_id"])
    assert video.status == "UPLOADED"
    job = Job.objects.get()
    assert (job.job_id, job.job_type, job.payload) == (
        video.encode_job_id,
        "video_encode",
        {"video_id": str(video.video_id)},
    )
    messages = [json.loads(text) for text in video_queue_bodies()]
    assert [m["job_id"] for m in messages] == [str(job.job_id)]
    snap = store.snapshot(alpha_teacher.tenant.id, Topic.video(video.video_id))
    assert snap is not None
    assert (snap.status, snap.owner_id) == ("UPLOADED", alpha_teacher.user.id)


@override_settings(JOB_ACTIVE_MAX_PER_USER=2, JOB_QUOTA_RETRY_AFTER=30)
def test_complete_upload_past_the_job_quota_is_a_429_and_the_video_waits_for_a_retry(
    alpha_teacher: Member, beta_admin: Member
) -> None:
    # given a teacher with two unfinished jobs (the quota here), an uploaded file, and a
    # member of another tenant with one unfinished job and an uploaded file too
    client = alpha_teacher.client()
    body = register(client, size=len(DATA)).json()
    assert put_upload(body, DATA) == 200
    unfinished = [_unfinished_job(alpha_teacher) for _ in range(2)]
    _unfinished_job(beta_admin)
    other = beta_admin.client()
    other_body = register(other, size=len(DATA)).json()
    assert put_upload(other_body, DATA) == 200

    # when both declare their upload complete
    refused = client.post(f"/media/videos/{body['video_id']}/complete-upload/")
    accepted = other.post(f"/media/videos/{other_body['video_id']}/complete-upload/")

    # then the teacher gets 429 quota_exceeded with Retry-After, and nothing changed: the
    # video waits, no encode job or message exists and Redis holds no state for it
    assert refused.status_code == 429, refused.json()
    assert refused["Retry-After"] == "30"
    assert refused.json()["code"] == "quota_exceeded"
    assert refused.json()["fields"] == {}
    video = video_row(body["video_id"])
    assert (video.status, video.encode_job_id) == ("PENDING_UPLOAD", None)
    assert store.snapshot(alpha_teacher.tenant.id, Topic.video(video.video_id)) is None
    # and the other tenant's quota is its own
    assert accepted.status_code == 202, accepted.json()
    assert [json.loads(text)["tenant_id"] for text in video_queue_bodies()] == [
        beta_admin.tenant.id
    ]

    # when one of the teacher's jobs finishes and the call is repeated
    Job.objects.filter(job_id=unfinished[0]).update(status="DONE")
    retried = client.post(f"/media/videos/{body['video_id']}/complete-upload/")

    # then the encode is queued
    assert retried.status_code == 202, retried.json()
    assert video_row(body["video_id"]).status == "UPLOADED"
    assert len(video_queue_bodies()) == 2


def _unfinished_job(member: Member) -> uuid.UUID:
    job = jobs_repository.job_insert(
        member.tenant.id,
        job_type="messaging.send",
        payload={},
        created_by_id=member.user.id,
        idempotency_key="",
        job_id=uuid.uuid4(),
    )
    return job.job_id


def test_a_video_encode_job_cannot_be_started_through_the_jobs_api(
    alpha_teacher: Member,
) -> None:
    # given a registered, uploaded video of the teacher's
    client = alpha_teacher.client()
    body = register(client, size=len(DATA)).json()
    assert put_upload(body, DATA) == 200

    # when the teacher asks POST /api/v1/jobs/ for its encode directly
    response = client.post(
        "/api/v1/jobs/",
        {"job_type": "video_encode", "payload": {"video_id": body["video_id"]}},
        content_type="application/json",
    )

    # then it is an unknown job type, and no job or message exists
    assert response.status_code == 400, response.json()
    assert list(response.json()["fields"]) == ["job_type"]
    assert not Job.objects.exists()
    assert video_queue_bodies() == []


def test_another_tenant_and_another_teacher_cannot_see_complete_or_list_a_video(
    alpha_teacher: Member, alpha_teacher2: Member, alpha_staff: Member, beta_admin: Member
) -> None:
    # given alpha's teacher's uploaded video
    client = alpha_teacher.client()
    body = register(client, size=len(DATA)).json()
    assert put_upload(body, DATA) == 200
    video_id = body["video_id"]
    paths = [f"/media/videos/{video_id}/", f"/media/videos/{video_id}/playlist.m3u8"]

    # when beta's admin and another alpha teacher try it
    outsiders = [beta_admin.client(), alpha_teacher2.client()]
    reads = [c.get(path) for c in outsiders for path in paths]
    completes = [c.post(f"/media/videos/{video_id}/complete-upload/") for c in outsiders]
    lists = [c.get("/media/videos/").json()["results"] for c in outsiders]

    # then it does not exist for them, and nothing was queued
    assert [r.status_code for r in reads + completes] == [404] * 6
    assert all(r.json()["code"] == "not_found" for r in reads + completes)
    assert lists == [[], []]
    assert video_row(video_id).status == "PENDING_UPLOAD"
    # while the owner and alpha's staff see it
    assert [v["video_id"] for v in client.get("/media/videos/").json()["results"]] == [video_id]
    staff = alpha_staff.client().get("/media/videos/?session_id=42").json()["results"]
    assert [v["video_id"] for v in staff] == [video_id]
    assert alpha_staff.client().get("/media/videos/?session_id=7").json()["results"] == []
