"""Bearer tokens authenticate with zero SQL; the tenant comes only from the token."""

from __future__ import annotations

import time

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.support.members import Member

ME_URL = "/api/v1/auth/me/"


def _forge(claims: dict[str, object], key: str | None = None) -> str:
    base = {"token_type": "access", "exp": int(time.time()) + 60, "jti": "x", "user_id": 1}
    return jwt.encode({**base, **claims}, key or settings.SIMPLE_JWT["SIGNING_KEY"], "HS256")


def test_bearer_request_makes_no_sql_query(
    alpha_staff: Member, django_assert_num_queries: pytest.FixtureRequest
) -> None:
    # given a member's bearer token
    client = alpha_staff.client()

    # when /me is requested, with no query allowed
    with django_assert_num_queries(0):  # type: ignore[operator]
        response = client.get(ME_URL)

    # then the caller comes from the token alone
    assert response.status_code == 200
    assert response.json() == {
        "user_id": alpha_staff.user.id,
        "tenant_id": alpha_staff.tenant.id,
        "role": "staff",
        "expires_at": response.json()["expires_at"],
        "must_change_password": False,
    }
    assert response.json()["expires_at"] > time.time()


def test_tenant_is_never_taken_from_a_client_header_or_query(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given a member of alpha and the id of beta
    client = alpha_staff.client()

    # when /me is requested naming beta in the query and a header
    response = client.get(
        f"{ME_URL}?tenant_id={beta_staff.tenant.id}", HTTP_X_TENANT_ID=str(beta_staff.tenant.id)
    )

    # then the tenant is still the token's
    assert response.json()["tenant_id"] == alpha_staff.tenant.id


def test_no_token_is_401_in_the_error_shape(api: APIClient, db: None) -> None:
    # given no token
    # when /me is requested
    response = api.get(ME_URL)

    # then it is 401 in the error shape
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert set(response.json()) == {"code", "detail", "fields"}


@pytest.mark.parametrize(
    ("case", "token"),
    [
        ("expired", lambda: _forge({"tenant_id": 1, "role": "staff", "exp": int(time.time()) - 5})),
        ("wrong key", lambda: _forge({"tenant_id": 1, "role": "staff"}, key="x" * 64)),
        ("no tenant claim", lambda: _forge({"role": "staff"})),
        (
            "refresh token",
            lambda: _forge({"tenant_id": 1, "role": "staff", "token_type": "refresh"}),
        ),
        ("malformed", lambda: "abc.def"),
    ],
)
def test_bad_tokens_are_401_token_not_valid(api: APIClient, db: None, case: str, token) -> None:  # type: ignore[no-untyped-def]

    # given a bad token (the parameters)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token()}")

    # when /me is requested with it
    response = api.get(ME_URL)

    # then it is 401 token_not_valid
    assert response.status_code == 401, case
    assert response.json()["code"] == "token_not_valid"
