"""realtime.tokens: simplejwt's access-token check without Django, and what it remembers."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from realtime.identity import Caller, InvalidClaims, Role
from realtime.tokens import AccessTokenVerifier
from tests.support.tokens import make_token

KEY = "k" * 64


def _token(key: str = KEY, algorithm: str = "HS256", **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "token_type": "access",
        "exp": int(time.time()) + 300,
        "iat": int(time.time()),
        "jti": "0123456789abcdef",
        "user_id": 7,
        "tenant_id": 101,
        "role": "staff",
    }
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=algorithm)


def test_a_valid_token_gives_its_caller() -> None:
    # given a token as the token endpoint issues it
    token = _token()

    # when it is verified
    caller = AccessTokenVerifier(KEY).caller(token)

    # then
    assert (caller.tenant_id, caller.user_id, caller.role) == (101, 7, Role.STAFF)


@pytest.mark.parametrize(
    "token",
    [
        _token(key="x" * 64),  # another key
        _token(exp=int(time.time()) - 1),  # expired
        _token(exp=None),  # no expiry: simplejwt requires one
        _token(jti=None),  # no id
        _token(token_type="refresh"),  # a refresh token
        _token(token_type=None),  # no type
        _token(algorithm="HS512"),  # another algorithm
        _token(tenant_id=None),  # no tenant
        jwt.encode({"exp": int(time.time()) + 60}, "", algorithm="none"),  # unsigned
        "not.a.token",
        "",
    ],
)
def test_anything_else_is_refused(token: str) -> None:
    # given a token that must not authenticate (the parameters)
    # when/then it is refused
    with pytest.raises(InvalidClaims):
        AccessTokenVerifier(KEY).caller(token)


def test_a_tampered_payload_is_refused_even_after_the_original_was_remembered() -> None:
    # given a remembered token, and a copy with another payload and the original signature
    verifier = AccessTokenVerifier(KEY)
    token = _token()
    verifier.caller(token)
    header, _payload, signature = token.split(".")
    other = _token(tenant_id=202).split(".")[1]

    # when/then the copy is refused
    with pytest.raises(InvalidClaims):
        verifier.caller(f"{header}.{other}.{signature}")


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a token verified (and remembered) while valid
    verifier = AccessTokenVerifier(KEY)
    exp = int(time.time()) + 60
    token = _token(exp=exp)
    assert verifier.caller(token).expires_at == exp

    # when the clock reaches its expiry
    monkeypatch.setattr(time, "time", lambda: float(exp))

    # then it is refused, as simplejwt refuses it at that instant
    with pytest.raises(InvalidClaims):
        verifier.caller(token)


def test_the_second_check_is_remembered_and_the_memory_is_bounded() -> None:
    # given a verifier remembering at most 2 tokens
    verifier = AccessTokenVerifier(KEY, cache_size=2)
    tokens = [_token(user_id=n) for n in (1, 2, 3)]

    # when the same token is checked twice, then two others
    first = verifier.caller(tokens[0])
    again = verifier.caller(tokens[0])
    others = [verifier.caller(t) for t in tokens[1:]]

    # then the second answer is the remembered caller, and the memory never exceeds its size
    assert again is first
    assert [c.user_id for c in others] == [2, 3]
    assert len(verifier._cache) <= 2


def test_refused_tokens_are_not_remembered() -> None:
    # given a verifier that refused a token
    verifier = AccessTokenVerifier(KEY)
    with pytest.raises(InvalidClaims):
        verifier.caller(_token(key="x" * 64))

    # then nothing was remembered
    assert verifier._cache == {}


def test_the_check_agrees_with_simplejwt_on_the_projects_own_tokens(settings: Any) -> None:
    # given a token made by simplejwt with the project's settings
    token = make_token(tenant_id=5, user_id=9, role="teacher")

    # when both check it
    expected = Caller.from_claims(AccessToken(token).payload)  # type: ignore[arg-type]
    caller = AccessTokenVerifier(settings.SIMPLE_JWT["SIGNING_KEY"]).caller(token)

    # then they read the same caller
    assert caller == expected
