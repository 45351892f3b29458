"""Helpers for the video service and worker tests: moto's S3 and SQS, members, uploads."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from rest_framework.test import APIClient

from domains.common.aws import sqs_client
from domains.jobs.dispatch import QueueKind, queue_url
from domains.tenants import repository as tenants
from domains.tenants.models import Tenant
from domains.videos import storage
from domains.videos.models import Video
from realtime.identity import Role
from tests.conftest import PASSWORD, Member


def moto_reset() -> None:
    url = f"{settings.AWS_ENDPOINT_URL}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - moto's local server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200


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
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
