"""Helpers for the video service and worker tests: moto's S3 and SQS, members, uploads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import requests
from rest_framework.test import APIClient

from domains.common.aws import sqs_client
from domains.jobs.dispatch import QueueKind, queue_url
from domains.tenants import repository as tenants
from domains.tenants.models import Tenant
from domains.videos import storage
from domains.videos.models import Video
from realtime import store
from realtime.clients import sync_redis
from realtime.identity import Role
from realtime.keys import Topic
from tests.support import workers as workers_support
from tests.support.members import PASSWORD, Member
from tests.support.workers import BASE_DIR, ThreadWorker, database_url, moto_reset

__all__ = ["BASE_DIR", "ThreadWorker", "database_url", "moto_reset"]


def member(tenant: Tenant, username: str, role: Role) -> Member:
    user = tenants.member_upsert(tenant.id, username=username, password=PASSWORD, role=role)
    return Member(tenant=tenant, user=user, role=role)


def register(
    client: APIClient,
    *,
    size: int,
    filename: str = "lecture.mp4",
    content_type: str = "video/mp4",
    session_id: int = 42,
) -> Any:
    return client.post(
        "/media/videos/",
        {
            "session_id": session_id,
            "filename": filename,
            "size": size,
            "content_type": content_type,
        },
        format="json",
    )


def put_upload(body: dict[str, Any], data: bytes) -> int:
    """PUT ``data`` to a registration's presigned URL as a browser would; the status code."""
    response = requests.put(
        body["upload_url"], data=data, headers=body["upload_headers"], timeout=30
    )
    return response.status_code


def upload_file(client: APIClient, path: Path, *, content_type: str = "video/mp4") -> Any:
    """Register, PUT and complete one file; returns the completion's response."""
    data = path.read_bytes()
    registered = register(
        client, size=len(data), filename=f"{path.stem}.mp4", content_type=content_type
    )
    assert registered.status_code == 201, registered.json()
    assert put_upload(registered.json(), data) == 200
    return client.post(f"/media/videos/{registered.json()['video_id']}/complete-upload/")


def video_row(video_id: uuid.UUID | str) -> Video:
    return Video.objects.get(video_id=video_id)


def object_keys(prefix: str) -> list[str]:
    return storage.keys_under(prefix)


def video_queue_bodies() -> list[str]:
    """The bodies of every visible message of the video queue (let go of at once)."""
    client = sqs_client()
    url = queue_url(QueueKind.VIDEO)
    response = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=1
    )
    messages = response.get("Messages", [])
    for message in messages:
        client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return [m["Body"] for m in messages]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60, every: float = 0.1) -> Any:
    """``tests.support.workers.wait_for`` with the patience an encode needs."""
    return workers_support.wait_for(predicate, timeout=timeout, every=every)


# --- workers --------------------------------------------------------------------------------
def video_config(**overrides: Any) -> Any:
    """The video queue's timings in seconds, for tests (moto counts visibility in seconds)."""
    from dataclasses import replace

    from workers.config import queue_config

    base = replace(
        queue_config(QueueKind.VIDEO),
        visibility_timeout=6,
        lease_seconds=4,
        heartbeat_interval=1.0,
        max_runtime=120,
        max_visibility=300,
    )
    return replace(base, **overrides)


def thread_worker(**kwargs: Any) -> ThreadWorker:
    """A video worker in a thread with the registered handler and the test timings."""
    options: dict[str, Any] = {"config": video_config(), **kwargs}
    handlers = options.pop("handlers", None)
    config = options.pop("config")
    return workers_support.thread_worker(QueueKind.VIDEO, handlers, config, **options)


class FrameRecorder:
    """Every state frame published on one topic's channel, read in a thread."""

    def __init__(self, tenant_id: int, topic: Topic) -> None:
        self._pubsub = sync_redis().pubsub()
        self._pubsub.subscribe(store.keyspace().group_channel(tenant_id, topic))
        self.frames: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message and message["type"] == "message":
                event = msgpack.unpackb(message["data"], raw=False)
                self.frames.append(json.loads(event["frame"]))

    def close(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(5)
        self._pubsub.close()
        return self.frames


@dataclass
class WorkerProcess(workers_support.WorkerProcess):
    """A video worker process, and the work directory its encodes use."""

    work_root: Path


def start_worker_process(directory: Path, **env: str) -> WorkerProcess:
    """A video worker process with second-scale timings; output to a file, work dir inside."""
    directory.mkdir(parents=True, exist_ok=True)
    work_root = directory / "work"
    environment = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DATABASE_URL": database_url(),
        "PYTHONPATH": str(BASE_DIR),
        "SQS_WAIT_TIME_SECONDS": "1",
        "WORKER_VIDEO_VISIBILITY_TIMEOUT": "4",
        "WORKER_VIDEO_LEASE_SECONDS": "2",
        "WORKER_VIDEO_HEARTBEAT_INTERVAL": "0.5",
        "WORKER_RETRY_DELAY": "0",
        "WORKER_TICK": "0.1",
        "WORKER_DLQ_SWEEP_INTERVAL": "0",
        "VIDEO_WORK_ROOT": str(work_root),
        "LOG_LEVEL": "INFO",
        **env,
    }
    log = directory / "worker.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--queue", "video"],
            cwd=BASE_DIR,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(popen=popen, log=log, work_root=work_root)


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (e.g. a work dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found
