"""JSON request bodies: the size limit holds before parsing, deep nesting is a 400 (audit F18)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from domains.common import parsers
from tests.conftest import Member
from tests.integration.realtime.conftest import make_token

TOKEN_URL = "/api/v1/auth/token/"
JOBS_URL = "/api/v1/jobs/"


class LoadsSpy:
    """Counts the bodies that reach the project's JSON decoding (``parsers._loads``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = parsers._loads

        def spy(body: bytes, *, encoding: str) -> Any:
            self.calls += 1
            return real(body, encoding=encoding)

        monkeypatch.setattr(parsers, "_loads", spy)


def staff_client(member: Member) -> APIClient:
    token = make_token(tenant_id=member.tenant.id, user_id=member.user.id, role=member.role.value)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def post_raw(client: APIClient, url: str, body: bytes) -> Any:
    return client.generic("POST", url, body, content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("url", [TOKEN_URL, JOBS_URL])
def test_F18_a_json_body_over_the_limit_is_refused_before_it_is_parsed(
    alpha_staff: Member, settings: Any, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # given a 1 KB limit and a valid 2 KB document, with and without a token
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps(
        {"job_type": "messaging.send", "payload": {"subject": "x", "body": "y" * 2048}}
    ).encode()
    client = staff_client(alpha_staff) if url == JOBS_URL else APIClient()
    spy = LoadsSpy(monkeypatch)

    # when
    response = post_raw(client, url, body)

    # then 413 in the one error shape, and the body was never decoded
    assert response.status_code == 413, response.content
    assert response.json() == {
        "code": "too_large",
        "detail": "The request body is larger than 1024 bytes.",
        "fields": {},
    }
    assert spy.calls == 0


@pytest.mark.django_db
def test_F18_a_body_at_the_limit_is_parsed(
    alpha_staff: Member, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a body of exactly the limit
    body = json.dumps({"tenant": "alpha", "username": "alpha-staff", "password": "x"}).encode()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)
    spy = LoadsSpy(monkeypatch)

    # when
    response = post_raw(APIClient(), TOKEN_URL, body)

    # then it reached the login check (a wrong password)
    assert response.status_code == 401, response.content
    assert spy.calls == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,  # past Python's recursion limit: RecursionError in json.loads
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        # within the recursion limit, past any document of this API
        b'{"job_type": "messaging.send", "payload": {"x": ' + b"[" * 100 + b"]" * 100 + b"}}",
    ],
    ids=["arrays-100000", "objects-5000", "payload-100"],
)
def test_F18_deep_nesting_gets_a_400_not_a_500(alpha_staff: Member, body: bytes) -> None:
    # when
    response = post_raw(staff_client(alpha_staff), JOBS_URL, body)

    # then
    assert response.status_code == 400, response.content[:200]
    assert response.json() == {
        "code": "parse_error",
        "detail": "The JSON document is nested too deeply.",
        "fields": {},
    }


@pytest.mark.django_db
def test_nesting_error_is_translated(alpha_staff: Member) -> None:
    # when
    response = staff_client(alpha_staff).generic(
        "POST", JOBS_URL, b"[" * 100_000, content_type="application/json", HTTP_ACCEPT_LANGUAGE="ko"
    )

    # then
    assert response.status_code == 400
    assert response.json()["detail"] == "JSON 문서의 중첩이 너무 깊습니다."


@pytest.mark.django_db
def test_a_messaging_payload_of_the_payload_limit_still_fits(alpha_staff: Member) -> None:
    # given a payload just under JOB_PAYLOAD_MAX_BYTES, in Korean, sent with ASCII escapes
    # (each syllable 6 bytes on the wire, 3 in the compact payload the service measures)
    payload = {"subject": "공지", "body": "가" * 21_000, "recipients": ["a@example.com"]}
    body = json.dumps({"job_type": "messaging.send", "payload": payload}, indent=2).encode()
    assert len(body) > 65_536

    # when
    response = post_raw(staff_client(alpha_staff), JOBS_URL, body)

    # then the body limit let it through to the service, which accepted it
    assert response.status_code in (202, 503), response.content[:300]
