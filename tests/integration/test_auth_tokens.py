"""POST /api/v1/auth/token/ and /token/refresh/ against real PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from domains.tenants.models import TenantMembership
from tests.conftest import PASSWORD, Member

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])


def test_member_gets_tokens_carrying_user_tenant_and_role(
    api: APIClient, alpha_staff: Member
) -> None:
    response = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "access_expires_at", "must_change_password"}
    assert body["must_change_password"] is False
    claims = _claims(body["access"])
    assert claims["user_id"] == str(alpha_staff.user.id) or claims["user_id"] == alpha_staff.user.id
    assert claims["tenant_id"] == alpha_staff.tenant.id
    assert claims["role"] == "staff"
    assert claims["token_type"] == "access"
    expires = datetime.fromisoformat(body["access_expires_at"].replace("Z", "+00:00"))
    assert int(expires.timestamp()) == claims["exp"]


FAILURES = {
    "wrong password": {"username": "alpha-staff", "password": "nope", "tenant": "alpha"},
    "unknown tenant": {"username": "alpha-staff", "password": PASSWORD, "tenant": "gamma"},
    "unknown user": {"username": "nobody", "password": PASSWORD, "tenant": "alpha"},
    "member of another tenant": {"username": "beta-staff", "password": PASSWORD, "tenant": "alpha"},
}


@pytest.mark.parametrize("payload", FAILURES.values(), ids=FAILURES.keys())
def test_every_login_failure_is_the_same_401_without_a_hint(
    api: APIClient, alpha_staff: Member, beta_staff: Member, payload: dict[str, str]
) -> None:
    response = api.post(TOKEN_URL, payload, format="json")

    assert response.status_code == 401
    assert response.json() == {
        "code": "authentication_failed",
        "detail": "Unable to log in with the provided credentials.",
        "fields": {},
    }


def test_login_failure_detail_is_translated_to_korean(api: APIClient, alpha_staff: Member) -> None:
    response = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": "nope", "tenant": "alpha"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="ko",
    )

    assert response.status_code == 401
    assert response.json()["detail"] == "제공된 인증 정보로 로그인할 수 없습니다."


def test_inactive_user_gets_no_token(api: APIClient, alpha_staff: Member) -> None:
    alpha_staff.user.is_active = False
    alpha_staff.user.save(update_fields=["is_active"])

    response = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
        format="json",
    )

    assert response.status_code == 401


def test_missing_fields_are_reported_per_field(api: APIClient, db: None) -> None:
    response = api.post(TOKEN_URL, {"username": "x"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"password", "tenant"}


def test_refresh_gives_a_new_access_token_with_the_current_role(
    api: APIClient, alpha_staff: Member
) -> None:
    tokens = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
        format="json",
    ).json()
    TenantMembership.objects.filter(user=alpha_staff.user).update(role="teacher")

    response = api.post(REFRESH_URL, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "access_expires_at"}
    claims = _claims(body["access"])
    assert claims["tenant_id"] == alpha_staff.tenant.id
    assert claims["role"] == "teacher"


def test_refresh_fails_once_the_membership_is_gone(api: APIClient, alpha_staff: Member) -> None:
    tokens = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
        format="json",
    ).json()
    TenantMembership.objects.filter(user=alpha_staff.user).delete()

    response = api.post(REFRESH_URL, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("which", ["access token", "garbage"])
def test_refresh_rejects_anything_but_a_refresh_token(
    api: APIClient, alpha_staff: Member, which: str
) -> None:
    token = alpha_staff.access_token() if which == "access token" else "not.a.token"

    response = api.post(REFRESH_URL, {"refresh": token}, format="json")

    assert response.status_code == 401
    assert set(response.json()) == {"code", "detail", "fields"}
