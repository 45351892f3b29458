"""The progress endpoints refuse a token that still carries ``pwd_change`` (audit F25, ADR
0102): both front doors, the Django view and the ASGI fast path, from the claim alone."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from project.asgi import application
from realtime import store
from realtime.keys import Topic
from realtime.state import Change
from tests.integration.security.conftest import signed_access

ALPHA, BETA = 301, 302
OWNER = 41


async def _asgi_get(path: str, token: str, language: str = "en") -> tuple[int, dict[str, Any]]:
    """One GET through the production ASGI application (the fast path serves it)."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept-language", language.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await application(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return int(status), json.loads(body)


@pytest.fixture
def own_job() -> Topic:
    topic = Topic.job(uuid.uuid4())
    store.publish(ALPHA, topic, Change(status="PENDING", owner_id=OWNER, job_type="demo"))
    return topic


@pytest.mark.django_db
def test_F25_django_progress_view_refuses_a_pwd_change_token_without_sql(own_job: Topic) -> None:
    # given: the owner's token that still carries pwd_change, and one without it
    fenced = signed_access(tenant_id=ALPHA, user_id=OWNER, pwd_change=True)
    cleared = signed_access(tenant_id=ALPHA, user_id=OWNER)
    path = f"/api/v1/jobs/{own_job.id}/progress/"

    # when: both read the progress of the owner's own job through Django
    with CaptureQueriesContext(connection) as queries:
        refused = APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {fenced}")
        allowed = APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {cleared}")

    # then: 403 password_change_required for the first, 200 for the second, no SQL at all
    assert refused.status_code == 403
    assert refused.json()["code"] == "password_change_required"
    assert allowed.status_code == 200
    assert len(queries) == 0


async def test_F25_fast_path_refuses_a_pwd_change_token_in_korean(own_job: Topic) -> None:
    # given: a pwd_change token of the owner
    fenced = signed_access(tenant_id=ALPHA, user_id=OWNER, pwd_change=True)

    # when: it reads the job's progress through the ASGI fast path
    status, body = await _asgi_get(f"/api/v1/jobs/{own_job.id}/progress/", fenced, "ko")

    # then: refused with the one error shape (this test has no database access at all)
    assert status == 403
    assert body == {
        "code": "password_change_required",
        "detail": "먼저 초기 비밀번호를 변경하세요.",
        "fields": {},
    }


async def test_F25_video_progress_is_fenced_too_and_beta_is_not_found() -> None:
    # given: a pwd_change token of beta's user and a cleared one, for a topic of alpha
    topic = Topic.video(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="UPLOADED", owner_id=OWNER))
    fenced = signed_access(tenant_id=BETA, user_id=OWNER, pwd_change=True)
    cleared = signed_access(tenant_id=BETA, user_id=OWNER)
    path = f"/media/videos/{topic.id}/progress/"

    # when: both ask for alpha's topic
    fenced_status, _body = await _asgi_get(path, fenced)
    cleared_status, _body = await _asgi_get(path, cleared)

    # then: the fence answers first; without it, another tenant's topic does not exist
    assert fenced_status == 403
    assert cleared_status == 404
