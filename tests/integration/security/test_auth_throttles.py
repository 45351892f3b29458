"""Login, refresh and password change are throttled per address and per (tenant, user)
(audit F12): 429 throttled with Retry-After and a translated message, counted in Redis."""

from __future__ import annotations

from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import PASSWORD, Member
from tests.integration.security.conftest import (
    PASSWORD_URL,
    REFRESH_URL,
    bearer,
    login,
)

GENEROUS = "1000/min"


def rates(**low: str) -> dict[str, str]:
    """Every scope generous except the ones a test checks."""
    scopes = ("login_ip", "login_user", "refresh_ip", "refresh_user")
    base = dict.fromkeys((*scopes, "password_ip", "password_user"), GENEROUS)
    return {**base, **low}


@override_settings(AUTH_THROTTLE_RATES=rates(login_user="3/min"))
def test_F12_login_is_throttled_per_tenant_and_username(
    api: APIClient, shared: tuple[Member, Member]
) -> None:
    # given: three wrong guesses at alpha's shared-user
    for _ in range(3):
        assert login(api, "alpha", "shared-user", "wrong").status_code == 401

    # when: a fourth attempt comes, even with the right password
    refused = login(api, "alpha", "shared-user")

    # then: 429 with Retry-After and the one error shape
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert set(refused.json()) == {"code", "detail", "fields"}
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 60
    assert refused.json()["detail"].startswith("Too many attempts. Try again in ")


@override_settings(AUTH_THROTTLE_RATES=rates(login_user="3/min"))
def test_F12_a_throttle_on_alphas_user_does_not_throttle_betas_same_username(
    api: APIClient, shared: tuple[Member, Member]
) -> None:
    # given: alpha's shared-user is throttled
    for _ in range(4):
        login(api, "alpha", "shared-user", "wrong")
    assert login(api, "alpha", "shared-user").status_code == 429

    # when: the same username logs in to beta
    response = login(api, "beta", "shared-user")

    # then: beta counts apart
    assert response.status_code == 200


@override_settings(AUTH_THROTTLE_RATES=rates(login_user="3/min"))
def test_F12_throttled_message_is_korean(api: APIClient, alpha_staff: Member) -> None:
    # given: alpha-staff's login budget is spent
    for _ in range(3):
        login(api, "alpha", "alpha-staff", "wrong")

    # when: a Korean browser tries again
    refused = login(api, "alpha", "alpha-staff", HTTP_ACCEPT_LANGUAGE="ko")

    # then: the message is Korean and names the wait
    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert detail.startswith("시도 횟수가 너무 많습니다.")
    assert refused["Retry-After"] in detail


@override_settings(AUTH_THROTTLE_RATES=rates(login_ip="4/min"))
def test_F12_login_is_throttled_per_address_across_usernames(
    api: APIClient, alpha_staff: Member, beta_staff: Member
) -> None:
    # given: one address spends its budget on four different accounts (two tenants)
    for username, tenant in [("a1", "alpha"), ("a2", "alpha"), ("b1", "beta"), ("b2", "beta")]:
        assert login(api, tenant, username, REMOTE_ADDR="10.0.0.7").status_code == 401

    # when: it tries a real account, while another address tries the same account
    refused = login(api, "alpha", "alpha-staff", REMOTE_ADDR="10.0.0.7")
    other = login(api, "alpha", "alpha-staff", REMOTE_ADDR="10.0.0.8")

    # then: only the spent address is refused
    assert refused.status_code == 429
    assert other.status_code == 200


@override_settings(AUTH_THROTTLE_RATES=rates(login_ip="2/min"))
def test_F12_a_forged_forwarded_for_header_does_not_reset_the_address_budget(
    api: APIClient, alpha_staff: Member
) -> None:
    # given: no proxy is trusted (the development default) and the address is spent
    for index in range(2):
        login(api, "alpha", "x", HTTP_X_FORWARDED_FOR=f"203.0.113.{index}")

    # when: the client claims yet another address in X-Forwarded-For
    response = login(api, "alpha", "alpha-staff", HTTP_X_FORWARDED_FOR="203.0.113.99")

    # then: it is counted by its peer address all the same
    assert response.status_code == 429


@override_settings(AUTH_THROTTLE_RATES=rates(refresh_user="2/min"))
def test_F12_refresh_is_throttled_per_tenant_and_user(
    api: APIClient, shared: tuple[Member, Member]
) -> None:
    # given: the shared user's alpha refresh budget is spent
    alpha_refresh = login(api, "alpha", "shared-user").json()["refresh"]
    beta_refresh = login(api, "beta", "shared-user").json()["refresh"]
    for _ in range(2):
        assert api.post(REFRESH_URL, {"refresh": alpha_refresh}, format="json").status_code == 200

    # when: alpha refreshes again, and beta does
    refused = api.post(REFRESH_URL, {"refresh": alpha_refresh}, format="json")
    beta = api.post(REFRESH_URL, {"refresh": beta_refresh}, format="json")

    # then: alpha is throttled, beta is not
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert beta.status_code == 200


@override_settings(AUTH_THROTTLE_RATES=rates(refresh_user="2/min"))
def test_F12_forged_refresh_tokens_do_not_spend_the_victims_budget(
    api: APIClient, alpha_staff: Member
) -> None:
    # given: an attacker posts refresh "tokens" that do not verify
    for index in range(5):
        api.post(REFRESH_URL, {"refresh": f"forged.{index}.token"}, format="json")

    # when: the victim refreshes
    refresh = login(api, "alpha", "alpha-staff").json()["refresh"]
    response = api.post(REFRESH_URL, {"refresh": refresh}, format="json")

    # then: the victim's own budget is whole
    assert response.status_code == 200


@override_settings(AUTH_THROTTLE_RATES=rates(password_user="2/min"))
def test_F12_password_change_is_throttled_per_user_not_per_tenant(
    api: APIClient, alpha_staff: Member, beta_staff: Member
) -> None:
    # given: alpha-staff guessed the current password twice
    alpha = bearer(alpha_staff.access_token())
    for _ in range(2):
        guess = {"current_password": "guess", "new_password": "a much longer secret 42"}
        assert alpha.post(PASSWORD_URL, guess, format="json").status_code == 400

    # when: alpha-staff tries again with the right password, and beta-staff changes theirs
    right = {"current_password": PASSWORD, "new_password": "a much longer secret 42"}
    refused = alpha.post(PASSWORD_URL, right, format="json")
    beta = bearer(beta_staff.access_token()).post(PASSWORD_URL, right, format="json")

    # then: alpha-staff waits, beta-staff does not
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert beta.status_code == 200
