"""Uploaded files waiting for their job: one S3 object per job, never in a message or a row.

Keys are ``imports/<tenant_id>/<job_id>.xlsx`` in ``EXCEL_IMPORT_BUCKET``; the API writes the
object before the job row exists, the worker reads it. ``imports_bucket_ensure`` creates the
bucket idempotently (``create_queues``, tests, dev); in AWS the bucket belongs to the
infrastructure, with a lifecycle rule that expires old uploads.
"""

from __future__ import annotations

import logging
import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from domains.common.aws import s3_client

logger = logging.getLogger(__name__)

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class UploadMissing(Exception):
    """The object is not (or no longer) in the bucket."""


def import_object_key(tenant_id: int, job_id: uuid.UUID) -> str:
    return f"imports/{tenant_id}/{job_id}.xlsx"


def imports_bucket_ensure() -> bool:
    """Create the imports bucket if it does not exist; True if it was created."""
    client = s3_client()
    bucket = settings.EXCEL_IMPORT_BUCKET
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        pass
    else:
        return False
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
    return True


def upload_put(key: str, data: bytes) -> None:
    s3_client().put_object(
        Bucket=settings.EXCEL_IMPORT_BUCKET, Key=key, Body=data, ContentType=XLSX_CONTENT_TYPE
    )


def upload_get(key: str) -> bytes:
    try:
        response = s3_client().get_object(Bucket=settings.EXCEL_IMPORT_BUCKET, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NoSuchBucket"}:
            raise UploadMissing(key) from exc
        raise
    return response["Body"].read()


def upload_delete(key: str) -> None:
    """Best effort: an orphan object costs little and expires with the bucket's lifecycle."""
    try:
        s3_client().delete_object(Bucket=settings.EXCEL_IMPORT_BUCKET, Key=key)
    except (BotoCoreError, ClientError):
        logger.warning("upload not deleted key=%s", key, exc_info=True)
