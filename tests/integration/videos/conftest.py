"""Clips generated once per run with ffmpeg's lavfi sources (Debian's ffmpeg: `make ffmpeg`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from domains.jobs.dispatch import queue_urls_forget
from domains.tenants.models import Tenant
from domains.videos import storage
from realtime.identity import Role
from tests.integration.videos import media, support
from tests.support.members import Member
from workers.sqs import queues_create


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    media.require_ffmpeg()
    root = tmp_path_factory.mktemp("clips")
    made = {
        "landscape": media.make_clip(root / "landscape.mp4", size="1280x720", seconds=5),
        "portrait": media.make_clip(root / "portrait.mp4", size="360x640"),
        "rotated": media.make_clip(root / "rotated.mp4", size="320x240", rotate=90),
        "silent": media.make_clip(root / "silent.mp4", size="640x360", audio=False),
        "faststart": media.make_clip(
            root / "faststart.mp4", size="640x360", seconds=6, faststart=True
        ),
        "audio_only": media.make_audio(root / "audio_only.wav"),
        "image": media.make_image(root / "image.png"),
    }
    whole = made["landscape"].read_bytes()
    (root / "empty.mp4").write_bytes(b"")
    (root / "random.mp4").write_bytes(os.urandom(200_000))
    # moov is at the end of a default mp4, so its first half has no index at all
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (root / "text.mp4").write_text("not a video, just some text\n")
    # with the index first, a cut file still probes, with the full duration
    fast = made["faststart"].read_bytes()
    (root / "faststart_truncated.mp4").write_bytes(fast[: len(fast) // 4])
    for name in ("empty", "random", "truncated", "text", "faststart_truncated"):
        made[name] = root / f"{name}.mp4"
    return made


@pytest.fixture
def video_aws() -> Iterator[None]:
    """Empty queues and an empty video bucket in moto's server for every test using it."""
    support.moto_reset()
    queues_create(max_receive_count=3)
    storage.bucket_ensure()
    yield
    queue_urls_forget()


@pytest.fixture
def alpha_teacher(alpha: Tenant) -> Member:
    return support.member(alpha, "alpha-teacher", Role.TEACHER)


@pytest.fixture
def alpha_teacher2(alpha: Tenant) -> Member:
    return support.member(alpha, "alpha-teacher2", Role.TEACHER)


@pytest.fixture
def beta_admin(beta: Tenant) -> Member:
    return support.member(beta, "beta-admin", Role.ADMIN)


@pytest.fixture
def video_worker(video_aws: None, settings: Any, tmp_path: Path) -> Iterator[support.ThreadWorker]:
    """A video worker in a thread, its work directories under the test's tmp_path."""
    settings.VIDEO_WORK_ROOT = str(tmp_path / "work")
    worker = support.thread_worker()
    yield worker
    worker.stop()


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[..., support.WorkerProcess]]:
    """``manage.py run_worker --queue video`` processes, killed at the end if still running."""
    started: list[support.WorkerProcess] = []

    def _start(**env: str) -> support.WorkerProcess:
        process = support.start_worker_process(tmp_path / f"worker-{len(started) + 1}", **env)
        started.append(process)
        return process

    yield _start
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
        process.popen.wait(timeout=10)
