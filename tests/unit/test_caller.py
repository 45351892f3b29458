import pytest

from realtime.identity import Caller, InvalidClaims, Role, sees_topic, sees_whole_tenant


def test_caller_reads_tenant_user_role_and_expiry_from_claims() -> None:
    # given the claims of an access token
    # when the caller is read from them
    caller = Caller.from_claims({"user_id": "7", "tenant_id": 3, "role": "staff", "exp": 100})

    # then
    assert caller == Caller(tenant_id=3, user_id=7, role=Role.STAFF, expires_at=100)
    assert caller.sees_whole_tenant


@pytest.mark.parametrize(
    "claims",
    [
        {"user_id": 1, "role": "staff", "exp": 1},  # no tenant
        {"user_id": 1, "tenant_id": 2, "exp": 1},  # no role
        {"user_id": 1, "tenant_id": 2, "role": "owner", "exp": 1},  # unknown role
        {"user_id": 1, "tenant_id": "x", "role": "staff", "exp": 1},  # tenant not an id
    ],
)
def test_claims_without_a_usable_tenant_identity_are_rejected(claims: dict[str, object]) -> None:
    # given claims that lack a usable tenant, role or tenant id (the parameters)
    # when/then reading them is refused
    with pytest.raises(InvalidClaims):
        Caller.from_claims(claims)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.ADMIN, True),
        (Role.STAFF, True),
        (Role.TEACHER, False),
        (Role.STUDENT, False),
        (Role.PARENT, False),
    ],
)
def test_only_admin_and_staff_see_the_whole_tenant(role: Role, expected: bool) -> None:
    # given a role (the parameters)
    # when/then only admins and staff see the whole tenant
    assert sees_whole_tenant(role) is expected


@pytest.mark.parametrize(
    ("role", "owner_id", "expected"),
    [
        (Role.STAFF, 99, True),  # someone else's topic, tenant-wide role
        (Role.ADMIN, None, True),  # a topic without an owner, tenant-wide role
        (Role.STUDENT, 7, True),  # one's own topic
        (Role.STUDENT, 99, False),  # someone else's topic
        (Role.TEACHER, None, False),  # no owner: only tenant-wide roles see it
    ],
)
def test_one_visibility_rule_for_owners_and_tenant_wide_roles(
    role: Role, owner_id: int | None, expected: bool
) -> None:
    # given a caller with user id 7
    caller = Caller(tenant_id=3, user_id=7, role=role, expires_at=100)

    # when it asks for a topic or record owned by owner_id
    visible = sees_topic(caller, owner_id=owner_id)

    # then only staff and admin see beyond their own
    assert visible is expected
