"""Uploaded clips through the real video worker: real ffmpeg, moto's S3 and SQS, PostgreSQL, Redis.

Clips are lavfi-made 4-6 s files (conftest ``clips``); the worker runs in a thread with
second-scale queue timings, or as ``manage.py run_worker`` processes for the kill test.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import override_settings

from domains.common.aws import s3_client
from domains.jobs.models import Job
from domains.videos import storage
from domains.videos.hls import parse_master, parse_media
from domains.videos.messages import NO_VIDEO_STREAM, TIMED_OUT, UNREADABLE
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
STEPS = ["probing", "encoding", "uploading", "finalizing"]


def _terminal(video_id: str) -> str | None:
    status = video_row(video_id).status
    return status if status in {"READY", "FAILED"} else None


def _content_type(key: str) -> str:
    return s3_client().head_object(Bucket=settings.VIDEO_BUCKET, Key=key)["ContentType"]


def _uploaded(member: Member, clip: Path) -> str:
    response = upload_file(member.client(), clip)
    assert response.status_code == 202, response.json()
    return str(response.json()["video_id"])


def test_a_clip_goes_to_ready_with_validated_hls_under_its_attempt_and_plays(
    alpha_teacher: Member,
    alpha_student: Member,
    beta_admin: Member,
    clips: dict[str, Path],
    video_worker: support.ThreadWorker,
    tmp_path: Path,
) -> None:
    # given a 1280x720, 5 s clip uploaded by a teacher, whose topic we listen to
    tenant = alpha_teacher.tenant.id
    client = alpha_teacher.client()
    registered = support.register(client, size=clips["landscape"].stat().st_size)
    video_id = registered.json()["video_id"]
    recorder = FrameRecorder(tenant, Topic.video(video_id))
    assert support.put_upload(registered.json(), clips["landscape"].read_bytes()) == 200

    # when the upload is completed and the worker runs
    assert client.post(f"/media/videos/{video_id}/complete-upload/").status_code == 202
    assert wait_for(lambda: _terminal(video_id), timeout=90) == "READY"

    # then the record points at attempt 1's master playlist, with the probed duration
    video = video_row(video_id)
    prefix = f"videos/{tenant}/{video_id}/1/"
    assert video.hls_path == f"{prefix}master.m3u8"
    assert video.duration == pytest.approx(5.0, abs=0.1)
    assert video.attempt == 1
    wait_for(lambda: Job.objects.get(job_id=video.encode_job_id).status == "DONE", timeout=10)
    # and S3 holds the 360p and 720p renditions with their content types
    keys = object_keys(prefix)
    assert f"{prefix}360p/index.m3u8" in keys
    assert f"{prefix}720p/index.m3u8" in keys
    assert not any(key.startswith(f"{prefix}1080p/") for key in keys)
    assert _content_type(video.hls_path) == "application/vnd.apple.mpegurl"
    segment = next(key for key in keys if key.endswith(".ts"))
    assert _content_type(segment) == "video/mp2t"
    # and the work directory is gone
    assert list((tmp_path / "work").iterdir()) == []
    # and Redis and its subscribers saw the steps in order, percent rising, READY last
    wait_for(lambda: recorder.frames and recorder.frames[-1]["status"] == "READY", timeout=5)
    frames = recorder.close()
    assert frames[-1]["hls_path"] == video.hls_path
    assert frames[-1]["duration"] == pytest.approx(video.duration)
    assert {f["session_id"] for f in frames} == {video.session_id}  # every frame names it
    running = [f["progress"] for f in frames if f["status"] == "PROCESSING" and f["progress"]]
    steps = [p["step"] for p in running]
    assert steps
    assert steps == sorted(steps, key=STEPS.index)
    percents = [p["percent"] for p in running if p["percent"] is not None]
    assert percents == sorted(percents)
    assert all(p["step_total"] == 4 for p in running)
    snap = store.snapshot(tenant, Topic.video(video_id))
    assert snap is not None
    assert snap.status == "READY"

    # when the owner plays it
    master = client.get(f"/media/videos/{video_id}/playlist.m3u8")

    # then the master lists API URLs of each rung, whose playlists carry presigned segments
    assert master.status_code == 200
    assert master["Content-Type"] == "application/vnd.apple.mpegurl"
    variants = [v.uri for v in parse_master(master.content.decode()).variants]
    assert variants == [
        f"/media/videos/{video_id}/hls/360p/index.m3u8",
        f"/media/videos/{video_id}/hls/720p/index.m3u8",
    ]
    variant = client.get(variants[1])
    assert variant.status_code == 200
    media = parse_media(variant.content.decode())
    assert media.ended
    assert media.total_duration == pytest.approx(5.0, abs=0.5)
    first = media.segments[0].uri
    assert f"/{prefix}720p/seg_00000.ts?" in first
    assert "X-Amz-Signature=" in first
    fetched = requests.get(first, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content[:1] == b"G"

    # and neither another tenant nor a student of the same tenant can play it
    for outsider in (beta_admin.client(), alpha_student.client()):
        assert outsider.get(f"/media/videos/{video_id}/playlist.m3u8").status_code == 404
        assert outsider.get(variants[0]).status_code == 404
        assert outsider.get(f"/media/videos/{video_id}/").status_code == 404


@pytest.mark.parametrize(
    ("clip", "rungs", "audio"),
    [("portrait", [("360p", (360, 640))], True), ("silent", [("360p", (640, 360))], False)],
)
def test_portrait_and_silent_clips_are_ready_without_upscaling(
    alpha_teacher: Member,
    clips: dict[str, Path],
    video_worker: support.ThreadWorker,
    clip: str,
    rungs: list[tuple[str, tuple[int, int]]],
    audio: bool,
) -> None:
    # given a portrait 360x640 clip, or a 640x360 one without sound
    video_id = _uploaded(alpha_teacher, clips[clip])

    # when the worker has encoded it
    assert wait_for(lambda: _terminal(video_id), timeout=90) == "READY"

    # then it has one rendition at its own short side, with sound only if the source had it
    master = parse_master(storage.object_text(video_row(video_id).hls_path))
    assert [(v.uri.split("/")[0], v.resolution) for v in master.variants] == rungs
    assert all(("mp4a" in (v.codecs or "")) is audio for v in master.variants)


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ("random", UNREADABLE),
        ("truncated", UNREADABLE),
        ("text", UNREADABLE),
        ("empty", UNREADABLE),
        ("audio_only", NO_VIDEO_STREAM),
    ],
)
def test_a_file_that_is_no_usable_video_ends_failed_with_a_teachers_message(
    alpha_teacher: Member,
    clips: dict[str, Path],
    video_aws: None,
    settings: Any,
    tmp_path: Path,
    clip: str,
    message: Any,
) -> None:
    # given a corrupt, truncated, text, empty (replaced after the check) or sound-only upload
    settings.VIDEO_WORK_ROOT = str(tmp_path / "work")
    source = clips[clip] if clip != "empty" else tmp_path / "one-byte.mp4"
    if clip == "empty":
        source.write_bytes(b"\0")
    video_id = _uploaded(alpha_teacher, source)
    if clip == "empty":
        s3_client().put_object(
            Bucket=settings.VIDEO_BUCKET, Key=video_row(video_id).file_key, Body=b""
        )

    # when the worker takes it
    worker = support.thread_worker()
    try:
        status = wait_for(lambda: _terminal(video_id), timeout=60)
    finally:
        worker.stop()

    # then the video and its job are FAILED with the message, in English and in Korean
    assert status == "FAILED"
    video = video_row(video_id)
    assert video.error == message.en
    wait_for(lambda: Job.objects.get(job_id=video.encode_job_id).status == "FAILED", timeout=10)
    client = alpha_teacher.client()
    assert client.get(f"/media/videos/{video_id}/").json()["error"] == message.en
    korean = client.get(f"/media/videos/{video_id}/", HTTP_ACCEPT_LANGUAGE="ko")
    assert korean.json()["error"] == message.ko
    snap = store.snapshot(alpha_teacher.tenant.id, Topic.video(video_id))
    assert snap is not None
    assert snap.status == "FAILED"
    # and nothing of it is left in S3's outputs or on the worker's disk
    assert object_keys(f"videos/{alpha_teacher.tenant.id}/{video_id}/") == []
    assert list((tmp_path / "work").iterdir()) == []
    # and playing it is a conflict, not a crash
    assert client.get(f"/media/videos/{video_id}/playlist.m3u8").status_code == 409


def test_an_encode_over_its_time_limit_is_stopped_failed_and_cleaned_up(
    alpha_teacher: Member, clips: dict[str, Path], video_aws: None, settings: Any, tmp_path: Path
) -> None:
    # given a time limit of a fraction of what the encode takes (slowest preset, one thread)
    settings.VIDEO_WORK_ROOT = str(tmp_path / "work")
    settings.VIDEO_ENCODE_PRESET = "veryslow"
    settings.VIDEO_ENCODE_THREADS = 1
    video_id = _uploaded(alpha_teacher, clips["landscape"])

    # when the worker runs it
    with override_settings(VIDEO_HARD_LIMIT_SECONDS=2.5, VIDEO_ENCODE_MARGIN_SECONDS=0.5):
        worker = support.thread_worker()
        try:
            status = wait_for(lambda: _terminal(video_id), timeout=60)
        finally:
            worker.stop()

    # then the video is FAILED for its time, its ffmpeg is gone and nothing is left behind
    assert status == "FAILED"
    assert video_row(video_id).error == TIMED_OUT.en
    assert support.processes_mentioning(str(tmp_path / "work")) == []
    assert list((tmp_path / "work").iterdir()) == []
    assert object_keys(f"videos/{alpha_teacher.tenant.id}/{video_id}/") == []


def test_a_worker_killed_mid_encode_is_replaced_and_the_video_is_ready_once(
    alpha_teacher: Member,
    clips: dict[str, Path],
    video_aws: None,
    worker_process: Any,
) -> None:
    # given a worker encoding a clip slowly (slowest preset, one thread)
    tenant = alpha_teacher.tenant.id
    video_id = _uploaded(alpha_teacher, clips["landscape"])
    slow = {"VIDEO_ENCODE_PRESET": "veryslow", "VIDEO_ENCODE_THREADS": "1"}
    first = worker_process(**slow)

    def encoding() -> bool:
        snap = store.snapshot(tenant, Topic.video(video_id))
        return snap is not None and '"step":"encoding"' in snap.document.replace(" ", "")

    wait_for(encoding, timeout=60)
    assert support.processes_mentioning(str(first.work_root))  # its ffmpeg runs

    # when it is killed outright, and a fresh worker starts
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=10)
    # (a dead attempt that had reached its upload would have left objects like these)
    dead = f"videos/{tenant}/{video_id}/1/"
    for name in ("720p/seg_00000.ts", "720p/index.m3u8"):
        s3_client().put_object(Bucket=settings.VIDEO_BUCKET, Key=dead + name, Body=b"partial")
    second = worker_process()
    assert wait_for(lambda: _terminal(video_id), timeout=120) == "READY", second.output()

    # then the kill took its ffmpeg with it, attempt 2 made it READY once, and only its
    # objects remain
    assert support.processes_mentioning(str(first.work_root)) == []
    video = video_row(video_id)
    assert video.attempt == 2
    assert video.hls_path == f"videos/{tenant}/{video_id}/2/master.m3u8"
    wait_for(lambda: Job.objects.get(job_id=video.encode_job_id).status == "DONE", timeout=10)
    assert Job.objects.get(job_id=video.encode_job_id).attempt == 2
    keys = object_keys(f"videos/{tenant}/{video_id}/")
    assert keys
    assert all(key.startswith(f"videos/{tenant}/{video_id}/2/") for key in keys)
    assert second.output().count("video READY") == 1
    second.popen.send_signal(signal.SIGTERM)
    assert second.popen.wait(timeout=20) == 0
