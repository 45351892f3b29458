"""Refresh tokens die with a password change or a deactivation, and refresh rotates (audit F5,
ADR 0014). Real PostgreSQL; a second tenant in every test."""

from __future__ import annotations

from typing import Any

import jwt
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from domains.tenants import services
from domains.tenants.models import TenantMembership
from tests.conftest import PASSWORD, Member
from tests.integration.security.conftest import PASSWORD_URL, REFRESH_URL, bearer, login

NEW_PASSWORD = "a much longer secret 42"


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])


def _refresh(api: APIClient, token: str) -> Any:
    return api.post(REFRESH_URL, {"refresh": token}, format="json")


def test_F5_refresh_token_issued_before_a_password_change_is_refused(
    api: APIClient, shared: tuple[Member, Member]
) -> None:
    # given: a classmate logged in as the user first (alpha) and keeps the refresh token;
    # the same user also holds a session in beta
    stolen = login(api, "alpha", "shared-user").json()["refresh"]
    beta_session = login(api, "beta", "shared-user").json()["refresh"]
    victim = login(api, "alpha", "shared-user").json()

    # when: the user changes the password
    changed = bearer(victim["access"]).post(
        PASSWORD_URL,
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
    )

    # then: every refresh token from before is refused, in both tenants; the new one works
    assert changed.status_code == 200
    assert _refresh(api, stolen).status_code == 401
    assert _refresh(api, stolen).json()["code"] == "authentication_failed"
    assert _refresh(api, beta_session).status_code == 401
    assert _refresh(api, changed.json()["refresh"]).status_code == 200


def test_F5_refresh_after_deactivation_is_refused_and_login_too(
    api: APIClient, shared: tuple[Member, Member]
) -> None:
    # given: the user holds refresh tokens in alpha and beta
    in_alpha, _in_beta = shared
    alpha_refresh = login(api, "alpha", "shared-user").json()["refresh"]
    beta_refresh = login(api, "beta", "shared-user").json()["refresh"]

    # when: alpha's admin deactivates the alpha membership
    services.membership_deactivate(in_alpha.tenant.id, user_id=in_alpha.user.id)

    # then: alpha refuses refresh and login; beta's membership is untouched
    assert _refresh(api, alpha_refresh).status_code == 401
    assert login(api, "alpha", "shared-user").status_code == 401
    assert _refresh(api, beta_refresh).status_code == 200
    assert login(api, "beta", "shared-user").status_code == 200


def test_reactivated_membership_does_not_revive_old_refresh_tokens(
    api: APIClient, alpha_staff: Member
) -> None:
    # given: a refresh token, then a deactivation
    old = login(api, "alpha", "alpha-staff").json()["refresh"]
    services.membership_deactivate(alpha_staff.tenant.id, user_id=alpha_staff.user.id)

    # when: the membership is switched on again
    TenantMembership.objects.filter(user=alpha_staff.user).update(is_active=True)

    # then: the old token stays dead; a new login works
    assert _refresh(api, old).status_code == 401
    assert login(api, "alpha", "alpha-staff").status_code == 200


def test_refresh_rotates_a_new_refresh_token_with_the_current_version(
    api: APIClient, alpha_staff: Member
) -> None:
    # given: a refresh token
    first = login(api, "alpha", "alpha-staff").json()["refresh"]

    # when: it is refreshed, then the answer's refresh token is refreshed in turn
    second = _refresh(api, first).json()
    third = _refresh(api, second["refresh"]).json()

    # then: each answer carries a new refresh token (new jti) for the same membership
    tokens = [first, second["refresh"], third["refresh"]]
    claims = [_claims(token) for token in tokens]
    assert len({c["jti"] for c in claims}) == 3
    assert all(c["token_type"] == "refresh" for c in claims)
    assert {(c["tenant_id"], str(c["user_id"]), c["token_version"]) for c in claims} == {
        (alpha_staff.tenant.id, str(alpha_staff.user.id), 0)
    }
    assert _claims(third["access"])["token_type"] == "access"


def test_refresh_is_one_query(api: APIClient, alpha_staff: Member) -> None:
    # given: a refresh token
    refresh = login(api, "alpha", "alpha-staff").json()["refresh"]

    # when: it is refreshed
    with CaptureQueriesContext(connection) as queries:
        response = _refresh(api, refresh)

    # then: one SELECT decided it
    assert response.status_code == 200
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_an_operator_setting_the_password_in_the_admin_revokes_refresh_tokens(
    api: APIClient, alpha_staff: Member, beta_staff: Member
) -> None:
    # given: refresh tokens of alpha-staff and of beta-staff; an operator in the Django admin
    alpha_refresh = login(api, "alpha", "alpha-staff").json()["refresh"]
    beta_refresh = login(api, "beta", "beta-staff").json()["refresh"]
    operator = alpha_staff.user.__class__.objects.create_superuser("operator", "", "op-pass-123")
    admin = APIClient()
    admin.force_login(operator)

    # when: the operator sets alpha-staff's password on the admin's password form
    response = admin.post(
        f"/admin/tenants/user/{alpha_staff.user.id}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    # then: alpha-staff's old refresh token is refused, beta-staff's is not
    assert response.status_code == 302
    assert _refresh(api, alpha_refresh).status_code == 401
    assert _refresh(api, beta_refresh).status_code == 200


def test_unticking_a_membership_in_the_admin_deactivates_it(
    api: APIClient, shared: tuple[Member, Member]
) -> None:
    # given: the shared user's refresh token in alpha; an operator in the Django admin
    in_alpha, in_beta = shared
    alpha_refresh = login(api, "alpha", "shared-user").json()["refresh"]
    beta_refresh = login(api, "beta", "shared-user").json()["refresh"]
    operator = in_alpha.user.__class__.objects.create_superuser("operator", "", "op-pass-123")
    admin = APIClient()
    admin.force_login(operator)
    page = admin.get(f"/admin/tenants/user/{in_alpha.user.id}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    formset = page.context["inline_admin_formsets"][0].formset
    data: dict[str, object] = {
        key: value for key, value in form.initial.items() if value is not None
    }
    data.pop("password", None)
    data.pop("groups", None)
    data.pop("user_permissions", None)
    data["date_joined_0"], data["date_joined_1"] = (
        in_alpha.user.date_joined.strftime("%Y-%m-%d"),
        in_alpha.user.date_joined.strftime("%H:%M:%S"),
    )
    prefix = formset.prefix
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": str(len(formset.forms)),
            f"{prefix}-INITIAL_FORMS": str(len(formset.forms)),
        }
    )
    for index, inline in enumerate(formset.forms):
        membership = inline.instance
        data[f"{prefix}-{index}-id"] = membership.pk
        data[f"{prefix}-{index}-user"] = in_alpha.user.id
        data[f"{prefix}-{index}-tenant"] = membership.tenant_id
        data[f"{prefix}-{index}-role"] = membership.role
        if membership.tenant_id != in_alpha.tenant.id:
            data[f"{prefix}-{index}-is_active"] = "on"

    # when: the operator saves the user with alpha's membership unticked
    response = admin.post(f"/admin/tenants/user/{in_alpha.user.id}/change/", data)

    # then: alpha's membership is off and its refresh token refused; beta's still works
    assert response.status_code == 302, response.content[:2000]
    assert not TenantMembership.objects.get(pk=_membership_pk(in_alpha)).is_active
    assert _refresh(api, alpha_refresh).status_code == 401
    assert _refresh(api, beta_refresh).status_code == 200
    assert in_beta.tenant.id != in_alpha.tenant.id


def _membership_pk(member: Member) -> int:
    return TenantMembership.objects.get(tenant=member.tenant, user=member.user).pk
