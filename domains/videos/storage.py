"""Video objects in S3: the one function that builds their keys, and every call on them.

Layout, always under the tenant (``video_keys`` is the only place a key is built)::

    uploads/<tenant>/<video_id>/source            the browser's presigned PUT
    videos/<tenant>/<video_id>/<attempt>/...       one encode attempt's HLS output

An attempt writes only under its own prefix, so a retried encode never mixes its segments with
a dead attempt's; ``hls_path`` names the master playlist of the attempt that became READY, and
the other attempts' prefixes are deleted after it (:func:`objects_delete_except`).
The bucket is ``VIDEO_BUCKET``; in AWS it belongs to the infrastructure, with CORS allowing the
web origin's PUT.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError
from django.conf import settings

from domains.common.aws import s3_client
from domains.videos.hls import content_type

logger = logging.getLogger(__name__)

# Segments are small single PUTs; concurrency comes from uploading several files at once.
UPLOAD_THREADS = 4
MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


@dataclass(frozen=True, slots=True)
class VideoKeys:
    tenant_id: int
    video_id: uuid.UUID

    @property
    def source(self) -> str:
        return f"uploads/{self.tenant_id}/{self.video_id}/source"

    @property
    def outputs(self) -> str:
        """The prefix of every attempt's output (with a trailing slash)."""
        return f"videos/{self.tenant_id}/{self.video_id}/"

    def attempt(self, attempt: int) -> str:
        """One attempt's prefix, with a trailing slash."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        return f"{self.outputs}{int(attempt)}/"

    def owns(self, key: str) -> bool:
        """True if ``key`` is this video's source or one of its outputs."""
        normal = posixpath.normpath(key)
        return normal == self.source or (
            normal.startswith(self.outputs) and ".." not in normal.split("/")
        )


def video_keys(tenant_id: int, video_id: uuid.UUID) -> VideoKeys:
    """Every key of a video, scoped by its tenant."""
    return VideoKeys(tenant_id=int(tenant_id), video_id=video_id)


class ObjectMissing(Exception):
    """No object under that key."""


def bucket_ensure() -> bool:
    """Create the video bucket (with CORS for the browser's PUT) if missing; True if created."""
    client = s3_client()
    bucket = settings.VIDEO_BUCKET
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError:
        pass
    kwargs: dict[str, object] = {"Bucket": bucket}
    if settings.AWS_REGION != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.AWS_REGION}
    try:
        client.create_bucket(**kwargs)  # type: ignore[arg-type]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        }:
            return False
        raise
    client.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["PUT", "GET", "HEAD"],
                    "AllowedOrigins": ["*"],
                    "AllowedHeaders": ["*"],
                    "MaxAgeSeconds": 3000,
                }
            ]
        },
    )
    return True


def upload_url(key: str, *, content_type: str, size: int, expires: int) -> str:
    """A presigned PUT for exactly ``size`` bytes of ``content_type`` (both are signed)."""
    return s3_client().generate_presigned_url(
        "put_object",
        Params={
            "Bucket": settings.VIDEO_BUCKET,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": size,
        },
        ExpiresIn=expires,
        HttpMethod="PUT",
    )


def download_url(key: str, *, expires: int) -> str:
    return s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": settings.VIDEO_BUCKET, "Key": key}, ExpiresIn=expires
    )


def object_size(key: str) -> int:
    """The stored size of ``key``; :class:`ObjectMissing` if there is none."""
    try:
        head = s3_client().head_object(Bucket=settings.VIDEO_BUCKET, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in MISSING:
            raise ObjectMissing(key) from exc
        raise
    return int(head["ContentLength"])


def object_text(key: str) -> str:
    try:
        response = s3_client().get_object(Bucket=settings.VIDEO_BUCKET, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in MISSING:
            raise ObjectMissing(key) from exc
        raise
    return response["Body"].read().decode("utf-8")


def download(key: str, path: Path) -> None:
    try:
        s3_client().download_file(settings.VIDEO_BUCKET, key, str(path))
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in MISSING:
            raise ObjectMissing(key) from exc
        raise


def upload_files(directory: Path, names: Iterable[str], prefix: str) -> Generator[str, None, None]:
    """Upload ``directory/<name>`` to ``prefix + name`` with its HLS content type, in order
    of completion; the caller consumes the iterator (and may stop between files)."""
    client = s3_client()
    bucket = settings.VIDEO_BUCKET

    def put(name: str) -> str:
        client.upload_file(
            str(directory / name),
            bucket,
            prefix + name,
            ExtraArgs={"ContentType": content_type(name), "CacheControl": "private, max-age=3600"},
        )
        return name

    pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="s3-up")
    try:
        yield from pool.map(put, names)
    finally:
        # Closed early (a stop between files): the uploads not yet started are dropped, the
        # running ones finish, so nothing writes under the prefix once this returns.
        pool.shutdown(wait=True, cancel_futures=True)


def put_text(key: str, text: str) -> None:
    s3_client().put_object(
        Bucket=settings.VIDEO_BUCKET,
        Key=key,
        Body=text.encode(),
        ContentType=content_type(key),
    )


def keys_under(prefix: str) -> list[str]:
    paginator = s3_client().get_paginator("list_objects_v2")
    found: list[str] = []
    for page in paginator.paginate(Bucket=settings.VIDEO_BUCKET, Prefix=prefix):
        found += [item["Key"] for item in page.get("Contents", [])]
    return found


def objects_delete(keys: Iterable[str]) -> int:
    """Delete ``keys`` in batches of 1,000 (S3's limit); returns how many were asked for."""
    batch: list[str] = []
    count = 0
    client = s3_client()
    for key in keys:
        batch.append(key)
        if len(batch) == 1000:
            client.delete_objects(
                Bucket=settings.VIDEO_BUCKET, Delete={"Objects": [{"Key": k} for k in batch]}
            )
            count += len(batch)
            batch = []
    if batch:
        client.delete_objects(
            Bucket=settings.VIDEO_BUCKET, Delete={"Objects": [{"Key": k} for k in batch]}
        )
        count += len(batch)
    return count


def prefix_delete(prefix: str) -> int:
    return objects_delete(keys_under(prefix))


def objects_delete_except(keys: VideoKeys, *, attempt: int) -> int:
    """Delete every output object of the video outside ``attempt``'s prefix (dead attempts)."""
    keep = keys.attempt(attempt)
    return objects_delete(key for key in keys_under(keys.outputs) if not key.startswith(keep))
