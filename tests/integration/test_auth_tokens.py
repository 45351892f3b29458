"""POST /api/v1/auth/token/ and /token/refresh/ against real PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from domains.tenants.models import TenantMembership
from tests.support.members import PASSWORD, Member

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])


def test_member_gets_tokens_carrying_user_tenant_and_role(
    api: APIClient, alpha_staff: Member
) -> None:
    # given a staff member of alpha (fixture)
    # when they log in with tenant, username and password
    response = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
        format="json",
    )

    # then the tokens carry their user, tenant and role, and the expiry matches the claim
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
    # given members in two tenants and a login that fails in one way (the parameters)
    # when it is posted
    response = api.post(TOKEN_URL, payload, format="json")

    # then the answer is the same 401, naming nothing
    assert response.status_code == 401
    assert response.json() == {
        "code": "authentication_failed",
        "detail": "Unable to log in with the provided credentials.",
        "fields": {},
    }


def test_login_failure_detail_is_translated_to_korean(api: APIClient, alpha_staff: Member) -> None:
    # given a wrong password and a Korean browser
    # when the login is posted
    response = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": "nope", "tenant": "alpha"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="ko",
    )

    # then the 401's detail is in Korean
    assert response.status_code == 401
    assert response.json()["detail"] == "제공된 인증 정보로 로그인할 수 없습니다."


def test_inactive_user_gets_no_token(api: APIClient, alpha_staff: Member) -> None:
    # given a member whose user is deactivated
    alpha_staff.user.is_active = False
    alpha_staff.user.save(update_fields=["is_active"])

    # when they log in with the right password
    response = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
        format="json",
    )

    # then no token is issued
    assert response.status_code == 401


def test_missing_fields_are_reported_per_field(api: APIClient, db: None) -> None:
    # given a login without a password or tenant
    # when it is posted
    response = api.post(TOKEN_URL, {"username": "x"}, format="json")

    # then each missing field is named
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"password", "tenant"}


def test_refresh_gives_a_new_access_token_with_the_current_role(
    api: APIClient, alpha_staff: Member
) -> None:
    # given a member's tokens, then a change of their role
    tokens = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
        format="json",
    ).json()
    TenantMembership.objects.filter(user=alpha_staff.user).update(role="teacher")

    # when the refresh token is used
    response = api.post(REFRESH_URL, {"refresh": tokens["refresh"]}, format="json")

    # then the new access token carries the current role
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "access_expires_at"}
    claims = _claims(body["access"])
    assert claims["tenant_id"] == alpha_staff.tenant.id
    assert claims["role"] == "teacher"


def test_refresh_fails_once_the_membership_is_gone(api: APIClient, alpha_staff: Member) -> None:
    # given a member's tokens, then the membership is deleted
    tokens = api.post(
        TOKEN_URL,
        {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
        format="json",
    ).json()
    TenantMembership.objects.filter(user=alpha_staff.user).delete()

    # when the refresh token is used
    response = api.post(REFRESH_URL, {"refresh": tokens["refresh"]}, format="json")

    # then the refresh is refused
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("which", ["access token", "garbage"])
def test_refresh_rejects_anything_but_a_refresh_token(
    api: APIClient, alpha_staff: Member, which: str
) -> None:
    # given an access token or garbage in place of a refresh token (the parameters)
    token = alpha_staff.access_token() if which == "access token" else "not.a.token"

    # when it is used to refresh
    response = api.post(REFRESH_URL, {"refresh": token}, format="json")

    # then it is refused in the error shape
    assert response.status_code == 401
    assert set(response.json()) == {"code", "detail", "fields"}
