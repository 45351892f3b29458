"""Cancelling videos (PROTOCOL.md §2, §5): ``POST /media/videos/{id}/cancel/`` end to end.

Real ffmpeg on a lavfi clip, moto's S3 and SQS, PostgreSQL, Redis, the video worker in a
thread. A running encode is stopped by its worker (ffmpeg gets SIGTERM, then SIGKILL), the
attempt's outputs are deleted and the video and its encode job end CANCELLED; a video no encode
runs for yet is CANCELLED at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from domains.common.aws import s3_client
from domains.jobs import services as jobs
from domains.jobs.models import Job
from realtime import store
from realtime.keys import Topic
from tests.integration.videos import support
from tests.integration.videos.support import (
    FrameRecorder,
    object_keys,
    upload_file,
    video_row,
    wait_for,
)
from tests.support.members import Member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _cancel(member: Member, video_id: str, **headers: Any) -> Any:
    return member.client().post(f"/media/videos/{video_id}/cancel/", **headers)


def _state(tenant_id: int, video_id: str) -> dict[str, Any]:
    snap = store.snapshot(tenant_id, Topic.video(video_id))
    assert snap is not None
    document: dict[str, Any] = json.loads(snap.document)
    return document


def _encoding(tenant_id: int, video_id: str) -> bool:
    snap = store.snapshot(tenant_id, Topic.video(video_id))
    if snap is None:
        return False
    progress = json.loads(snap.document)["progress"]
    return progress is not None and progress["step"] == "encoding"


def test_cancel_mid_encode_stops_ffmpeg_deletes_the_attempt_and_ends_cancelled(
    alpha_teacher: Member,
    alpha_student: Member,
    beta_admin: Member,
    clips: dict[str, Path],
    video_aws: None,
    settings: Any,
    tmp_path: Path,
) -> None:
    # given a teacher's 5 s clip being encoded slowly (slowest preset, one thread)
    settings.VIDEO_WORK_ROOT = str(tmp_path / "work")
    settings.VIDEO_ENCODE_PRESET = "veryslow"
    settings.VIDEO_ENCODE_THREADS = 1
    tenant = alpha_teacher.tenant.id
    response = upload_file(alpha_teacher.client(), clips["landscape"])
    assert response.status_code == 202, response.json()
    video_id = str(response.json()["video_id"])
    recorder = FrameRecorder(tenant, Topic.video(video_id))
    worker = support.thread_worker()
    try:
        wait_for(lambda: _encoding(tenant, video_id), timeout=60)
        assert support.processes_mentioning(str(tmp_path / "work"))  # its ffmpeg runs
        # (objects an attempt that had reached its upload would have written)
        attempt = f"videos/{tenant}/{video_id}/1/"
        s3_client().put_object(
            Bucket=settings.VIDEO_BUCKET, Key=attempt + "720p/seg_00000.ts", Body=b"partial"
        )

        # when another tenant and a student try to cancel it, then its teacher does
        outsiders = [_cancel(beta_admin, video_id), _cancel(alpha_student, video_id)]
        answer = _cancel(alpha_teacher, video_id)

        # then the outsiders find nothing, and the teacher's request is recorded while it runs
        assert [o.status_code for o in outsiders] == [404, 404]
        assert answer.status_code == 202, answer.json()
        body = answer.json()
        assert (body["topic"], body["status"], body["cancel_requested"]) == (
            f"video:{video_id}",
            "PROCESSING",
            True,
        )
        # and the worker stops it: the video CANCELLED, then its encode job
        wait_for(lambda: video_row(video_id).status == "CANCELLED", timeout=30)
        video = video_row(video_id)
        wait_for(lambda: Job.objects.get(job_id=video.encode_job_id).status == "CANCELLED")
    finally:
        worker.stop()

    # and ffmpeg is gone, the attempt's prefix and the work directory are empty
    assert support.processes_mentioning(str(tmp_path / "work")) == []
    assert object_keys(attempt) == []
    assert object_keys(f"videos/{tenant}/{video_id}/") == []
    assert list((tmp_path / "work").iterdir()) == []
    assert (video.cancel_requested, video.hls_path, video.attempt) == (True, "", 1)
    # and Redis shows the request, then CANCELLED, for the video and its job, never READY
    state = _state(tenant, video_id)
    assert (state["status"], state["cancel_requested"], state["progress"]) == (
        "CANCELLED",
        True,
        None,
    )
    job = Job.objects.get(job_id=video.encode_job_id)
    assert job.terminal_published_at is not None
    job_state = store.snapshot(tenant, Topic.job(job.job_id))
    assert job_state is not None
    assert job_state.status == "CANCELLED"
    wait_for(lambda: recorder.frames and recorder.frames[-1]["status"] == "CANCELLED", timeout=5)
    frames = recorder.close()
    statuses = [(f["status"], f["cancel_requested"]) for f in frames]
    assert ("PROCESSING", True) in statuses
    assert statuses.index(("PROCESSING", True)) < statuses.index(("CANCELLED", True))
    assert all(status != "READY" for status, _flag in statuses)
    # and playing it or cancelling it again is a conflict; the record says CANCELLED
    client = alpha_teacher.client()
    assert client.get(f"/media/videos/{video_id}/playlist.m3u8").status_code == 409
    again = _cancel(alpha_teacher, video_id, HTTP_ACCEPT_LANGUAGE="ko")
    assert again.status_code == 409
    assert again.json()["detail"] == "이미 처리가 끝난 동영상이라 취소할 수 없습니다."
    detail = client.get(f"/media/videos/{video_id}/").json()
    assert (detail["status"], detail["cancel_requested"]) == ("CANCELLED", True)


def test_a_video_waiting_for_its_file_is_cancelled_at_once(
    alpha_teacher: Member, alpha_student: Member, video_aws: None
) -> None:
    # given a registered upload whose file never came
    registered = support.register(alpha_teacher.client(), size=1_000)
    video_id = registered.json()["video_id"]

    # when a student of the tenant, then the teacher, cancels it
    refused = _cancel(alpha_student, video_id)
    answer = _cancel(alpha_teacher, video_id)

    # then the student finds nothing; the teacher gets CANCELLED at once, seq 1 (Redis held no
    # state for a video waiting for its file)
    assert refused.status_code == 404
    assert answer.status_code == 202, answer.json()
    assert (answer.json()["status"], answer.json()["seq"]) == ("CANCELLED", 1)
    assert video_row(video_id).status == "CANCELLED"
    # and completing the upload afterwards is a conflict that queues nothing
    completed = alpha_teacher.client().post(f"/media/videos/{video_id}/complete-upload/")
    assert completed.status_code == 409
    assert video_row(video_id).encode_job_id is None
    assert support.video_queue_bodies() == []


def test_a_queued_encode_is_cancelled_with_its_job_and_a_worker_never_runs_it(
    alpha_teacher: Member,
    clips: dict[str, Path],
    video_aws: None,
    settings: Any,
    tmp_path: Path,
) -> None:
    # given an uploaded clip whose encode job waits in the queue, no worker running
    settings.VIDEO_WORK_ROOT = str(tmp_path / "work")
    response = upload_file(alpha_teacher.client(), clips["silent"])
    video_id = str(response.json()["video_id"])
    job_id = video_row(video_id).encode_job_id

    # when the teacher cancels it
    answer = _cancel(alpha_teacher, video_id)

    # then the video and its job are CANCELLED at once
    assert answer.status_code == 202, answer.json()
    assert (answer.json()["status"], answer.json()["cancel_requested"]) == ("CANCELLED", True)
    assert video_row(video_id).status == "CANCELLED"
    assert Job.objects.get(job_id=job_id).status == "CANCELLED"

    # when a worker then receives the encode's message
    with override_settings(VIDEO_WORK_ROOT=str(tmp_path / "work")):
        worker = support.thread_worker()
        try:
            wait_for(lambda: worker.worker.stats.duplicates == 1, timeout=30)
        finally:
            worker.stop()

    # then it dropped the message without encoding anything
    assert support.video_queue_bodies() == []
    assert video_row(video_id).attempt == 0
    assert object_keys(f"videos/{alpha_teacher.tenant.id}/{video_id}/") == []
    assert not (tmp_path / "work").exists() or list((tmp_path / "work").iterdir()) == []


def test_a_video_encode_job_cancelled_through_the_jobs_api_cancels_its_video(
    alpha_teacher: Member, clips: dict[str, Path], video_aws: None
) -> None:
    # given an uploaded clip whose encode job is still queued
    response = upload_file(alpha_teacher.client(), clips["silent"])
    video_id = str(response.json()["video_id"])
    job_id = video_row(video_id).encode_job_id

    # when its job, not the video, is cancelled
    assert alpha_teacher.client().post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 202

    # then the video is CANCELLED too, in its record and in Redis, before anyone reads it
    assert video_row(video_id).status == "CANCELLED"
    assert _state(alpha_teacher.tenant.id, video_id)["status"] == "CANCELLED"
    detail = alpha_teacher.client().get(f"/media/videos/{video_id}/").json()
    assert (detail["status"], detail["cancel_requested"]) == ("CANCELLED", True)


def test_an_encode_asked_to_stop_whose_worker_died_before_the_video_is_cancelled_by_the_claim(
    alpha_teacher: Member, beta_staff: Member, clips: dict[str, Path], video_aws: None
) -> None:
    # given an uploaded clip whose encode job a worker claimed and then died with, before it
    # touched the video, and which was then asked to stop (its lease since run out)
    response = upload_file(alpha_teacher.client(), clips["silent"])
    video_id = str(response.json()["video_id"])
    tenant = alpha_teacher.tenant.id
    job_id = video_row(video_id).encode_job_id
    assert job_id is not None
    first = jobs.job_claim(tenant, job_id=job_id, lease_owner="dead", lease_seconds=60)
    assert first.job is not None
    assert alpha_teacher.client().post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 202
    assert video_row(video_id).status == "UPLOADED"
    Job.objects.filter(job_id=job_id).update(lease_expires_at=timezone.now())

    # when the redelivered message is claimed
    second = jobs.job_claim(tenant, job_id=job_id, lease_owner="next", lease_seconds=60)

    # then the job ends CANCELLED without running, and the video with it, live in Redis too;
    # the other tenant's view of the same ids is untouched (it has none)
    assert second.job is None
    assert Job.objects.get(job_id=job_id).status == "CANCELLED"
    assert video_row(video_id).status == "CANCELLED"
    assert _state(tenant, video_id)["status"] == "CANCELLED"
    assert store.snapshot(beta_staff.tenant.id, Topic.video(video_id)) is None


def test_another_tenants_admin_or_another_teacher_cannot_cancel_a_queued_video(
    alpha_teacher: Member,
    alpha_teacher2: Member,
    beta_admin: Member,
    clips: dict[str, Path],
    video_aws: None,
) -> None:
    # given a teacher's uploaded clip, queued
    response = upload_file(alpha_teacher.client(), clips["silent"])
    video_id = str(response.json()["video_id"])

    # when beta's admin, and another teacher of alpha, cancel it by its id
    answers = [_cancel(beta_admin, video_id), _cancel(alpha_teacher2, video_id)]

    # then it does not exist for them, and nothing changed
    assert [a.status_code for a in answers] == [404, 404]
    assert {a.json()["code"] for a in answers} == {"not_found"}
    video = video_row(video_id)
    assert (video.status, video.cancel_requested) == ("UPLOADED", False)
    assert Job.objects.get(job_id=video.encode_job_id).status == "PENDING"
