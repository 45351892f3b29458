"""Keys of the security counters name the tenant before the user; rates parse as DRF's."""

from __future__ import annotations

import pytest

from domains.tenants.throttles import rate_parse
from realtime.keys import KeySpace, throttle_key


def test_a_user_throttle_key_names_the_tenant_first() -> None:
    # given: one user id, 7
    # when: the same user id is keyed in two tenants
    alpha = throttle_key("refresh_user", tenant="1", user="7")
    beta = throttle_key("refresh_user", tenant="2", user="7")

    # then: they differ, and the tenant comes before the user
    assert alpha != beta
    assert alpha == "throttle:refresh_user:tenant:1:user:7"


def test_an_address_key_and_a_key_naming_nothing_are_told_apart() -> None:
    # given: a login scope keyed by address, and by nothing
    # when: the keys are made
    # then: an address key names the address; a key of neither is refused
    assert throttle_key("login_ip", ip="10.0.0.1") == "throttle:login_ip:ip:10.0.0.1"
    with pytest.raises(ValueError, match="address or a tenant"):
        throttle_key("login_ip")


def test_connection_and_messaging_keys_are_tenant_scoped_and_prefixed() -> None:
    # given: a deployment prefix
    space = KeySpace(prefix="p:")

    # when: connection and messaging keys are made for tenant 3, user 9
    # then: every key starts with the prefix and the tenant
    assert space.connections_key(3, 9) == "p:tenant:3:user:9:connections"
    assert space.messaging_daily_key(3, "20261201") == "p:tenant:3:messaging:recipients:20261201"
    assert (
        space.messaging_daily_key(3, "20261201", user_id=9)
        == "p:tenant:3:user:9:messaging:recipients:20261201"
    )


@pytest.mark.parametrize(
    ("rate", "parsed"), [("5/min", (5, 60)), ("10/s", (10, 1)), ("100/hour", (100, 3600))]
)
def test_rates_parse_as_drf_writes_them(rate: str, parsed: tuple[int, int]) -> None:
    # given: a rate as DRF writes it (the parameter)
    # when: it is parsed
    # then: it is (requests, seconds)
    assert rate_parse(rate) == parsed
