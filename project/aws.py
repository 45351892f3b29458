"""boto3 clients for SQS and S3, pointed at moto's server locally and in tests.

boto3 clients are thread-safe; one per process and service is enough.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from django.conf import settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def _client_kwargs() -> dict[str, object]:
    kwargs: dict[str, object] = {"region_name": settings.AWS_REGION}
    if settings.AWS_ENDPOINT_URL:
        kwargs["endpoint_url"] = settings.AWS_ENDPOINT_URL
        if not settings.IS_PROD and not os.environ.get("AWS_ACCESS_KEY_ID"):
            # moto accepts any credentials; a second terminal next to `make demo` has none.
            kwargs["aws_access_key_id"] = kwargs["aws_secret_access_key"] = "testing"  # noqa: S105
    return kwargs


@cache
def sqs_client() -> SQSClient:
    # Long polls last up to 20 s: the read timeout must exceed that.
    config = Config(connect_timeout=3, read_timeout=30, retries={"mode": "standard"})
    return boto3.client("sqs", config=config, **_client_kwargs())  # type: ignore[call-overload,no-any-return]


@cache
def s3_client() -> S3Client:
    config = Config(connect_timeout=3, read_timeout=60, retries={"mode": "standard"})
    return boto3.client("s3", config=config, **_client_kwargs())  # type: ignore[call-overload,no-any-return]


def probe_client() -> SQSClient:
    """An SQS client that fails fast, for readiness checks."""
    config = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
    return boto3.client("sqs", config=config, **_client_kwargs())  # type: ignore[call-overload,no-any-return]
