"""An imported student's initial password: flagged in the token, fenced off, changed once.

ADR 0102: the import hashes one initial password for all its students and flags them
``must_change_password``. Their tokens say so; until they change it, only ``/auth/me/`` and
``/auth/password/`` answer.
"""

from __future__ import annotations

import uuid

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from domains.tenants.models import User
from tests.conftest import PASSWORD, Member

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
PASSWORD_URL = "/api/v1/auth/password/"
NEW_PASSWORD = "a much better passphrase"


@pytest.fixture
def imported_student(alpha_student: Member) -> Member:
    User.objects.filter(pk=alpha_student.user.pk).update(must_change_password=True)
    alpha_student.user.refresh_from_db()
    return alpha_student


def _login(api: APIClient, username: str, password: str, tenant: str = "alpha") -> dict:
    response = api.post(
        TOKEN_URL, {"username": username, "password": password, "tenant": tenant}, format="json"
    )
    assert response.status_code == 200, response.json()
    return dict(response.json())


def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_an_initial_password_login_says_so_and_opens_only_me_and_password(
    api: APIClient, imported_student: Member
) -> None:
    body = _login(api, imported_student.username, PASSWORD)
    client = _bearer(body["access"])

    assert body["must_change_password"] is True
    claims = jwt.decode(body["access"], settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])
    assert claims["pwd_change"] is True
    refused = client.get(f"/api/v1/jobs/{uuid.uuid4()}/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "password_change_required"
    with CaptureQueriesContext(connection) as queries:
        me = client.get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert me.json()["must_change_password"] is True
    assert len(queries) == 0  # the fence is the token's claim, not a lookup


def test_changing_it_clears_the_flag_and_returns_tokens_that_open_everything(
    api: APIClient, imported_student: Member
) -> None:
    old = _login(api, imported_student.username, PASSWORD)

    response = _bearer(old["access"]).post(
        PASSWORD_URL,
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
    )

    assert response.status_code == 200, response.json()
    fresh = response.json()
    assert fresh["must_change_password"] is False
    imported_student.user.refresh_from_db()
    assert imported_student.user.must_change_password is False
    assert imported_student.user.check_password(NEW_PASSWORD)
    # The new access token passes the fence (404: the job does not exist, not 403).
    assert _bearer(fresh["access"]).get(f"/api/v1/jobs/{uuid.uuid4()}/").status_code == 404
    # The new refresh token carries no claim either; the one issued before the change is
    # refused (audit F5, ADR 0014).
    refreshed = api.post(REFRESH_URL, {"refresh": fresh["refresh"]}, format="json").json()
    claims = jwt.decode(
        refreshed["access"], settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"]
    )
    assert "pwd_change" not in claims
    assert api.post(REFRESH_URL, {"refresh": old["refresh"]}, format="json").status_code == 401
    assert (
        api.post(
            TOKEN_URL,
            {"username": imported_student.username, "password": PASSWORD, "tenant": "alpha"},
            format="json",
        ).status_code
        == 401
    )
    assert _login(api, imported_student.username, NEW_PASSWORD)["must_change_password"] is False


BAD_CHANGES = {
    "wrong current password": (
        {"current_password": "not it", "new_password": NEW_PASSWORD},
        "current_password",
    ),
    "too short": ({"current_password": PASSWORD, "new_password": "abc"}, "new_password"),
    "too common": ({"current_password": PASSWORD, "new_password": "password123"}, "new_password"),
    "unchanged": ({"current_password": PASSWORD, "new_password": PASSWORD}, "new_password"),
    "missing field": ({"current_password": PASSWORD}, "new_password"),
}


@pytest.mark.parametrize(("payload", "field"), BAD_CHANGES.values(), ids=BAD_CHANGES.keys())
def test_a_refused_change_names_the_field_and_changes_nothing(
    api: APIClient, imported_student: Member, payload: dict[str, str], field: str
) -> None:
    access = _login(api, imported_student.username, PASSWORD)["access"]

    response = _bearer(access).post(PASSWORD_URL, payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["fields"]) == [field]
    imported_student.user.refresh_from_db()
    assert imported_student.user.must_change_password is True
    assert imported_student.user.check_password(PASSWORD)


def test_a_change_in_one_tenant_touches_only_the_callers_own_user(
    api: APIClient, imported_student: Member, beta_staff: Member
) -> None:
    access = _login(api, beta_staff.username, PASSWORD, tenant="beta")["access"]

    response = _bearer(access).post(
        PASSWORD_URL,
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "user_id": 0},
        format="json",
    )

    assert response.status_code == 200
    beta_staff.user.refresh_from_db()
    imported_student.user.refresh_from_db()
    assert beta_staff.user.check_password(NEW_PASSWORD)
    assert imported_student.user.check_password(PASSWORD)
    assert imported_student.user.must_change_password is True


def test_the_password_endpoint_needs_a_token(api: APIClient) -> None:
    response = api.post(
        PASSWORD_URL, {"current_password": "x", "new_password": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 401
