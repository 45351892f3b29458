"""boto3 clients for SQS and S3, pointed at moto's server locally and in tests.

boto3 clients are thread-safe; one per process and service is enough.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from django.conf import settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def _client(service: str, config: Config) -> Any:
    """A client for ``service``; typed by the callers (boto3's overloads vary by stub version)."""
    key = secret = None
    if (
        settings.AWS_ENDPOINT_URL
        and not settings.IS_PROD
        and not os.environ.get("AWS_ACCESS_KEY_ID")
    ):
        # moto accepts any credentials; a second terminal next to `make demo` has none.
        key = secret = "testing"  # noqa: S105
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=settings.AWS_REGION,
        endpoint_url=settings.AWS_ENDPOINT_URL or None,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=config,
    )


@cache
def sqs_client() -> SQSClient:
    # Long polls last up to 20 s: the read timeout must exceed that.
    config = Config(connect_timeout=3, read_timeout=30, retries={"mode": "standard"})
    return cast("SQSClient", _client("sqs", config))


@cache
def s3_client() -> S3Client:
    config = Config(connect_timeout=3, read_timeout=60, retries={"mode": "standard"})
    return cast("S3Client", _client("s3", config))


def probe_client() -> SQSClient:
    """An SQS client that fails fast, for readiness checks."""
    config = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
    return cast("SQSClient", _client("sqs", config))
