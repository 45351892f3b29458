"""Production refuses to start with an unsafe configuration."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SAFE = {
    "DJANGO_ENV": "prod",
    "SECRET_KEY": "k" * 64,
    "DEBUG": "false",
    "ALLOWED_HOSTS": "academy.example.com",
    # Loading settings connects to neither.
    "DATABASE_URL": "postgres://academy@db.example.com:5432/academy",
    "REDIS_URL": "redis://redis.example.com:6379/0",
}
# The development SECRET_KEY of project/settings.py, which also signs tokens when unset.
DEV_KEY = "dev-insecure-secret-key-do-not-use-in-production-0123456789"


def _load_settings(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SAFE, **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_safe_production_configuration_loads() -> None:
    # given a safe production environment
    # when the settings are loaded in a subprocess
    result = _load_settings()

    # then they load
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DEBUG": "true"}, "DEBUG"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"DJANGO_ENV": "production"}, "DJANGO_ENV"),
    ],
)
def test_an_unsafe_production_configuration_is_refused(
    overrides: dict[str, str], reason: str
) -> None:
    # given a production environment with one unsafe value (the parameters)
    # when the settings are loaded in a subprocess
    result = _load_settings(**overrides)

    # then they are refused, naming the setting
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert reason in result.stderr


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL is not set"),
        ({"REDIS_URL": ""}, "REDIS_URL is not set"),
        ({"JWT_SIGNING_KEY": "secret"}, "JWT_SIGNING_KEY"),
        ({"JWT_SIGNING_KEY": DEV_KEY}, "JWT_SIGNING_KEY"),
    ],
)
def test_production_refuses_implicit_services_and_weak_token_keys(
    overrides: dict[str, str], reason: str
) -> None:
    # given a safe production environment with one service URL unset or a weak signing key
    # when the settings load
    result = _load_settings(**overrides)

    # then they refuse, naming the reason, instead of falling back to localhost or signing
    # tokens anyone can forge
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert reason in result.stderr


def test_production_takes_a_strong_token_key_of_its_own() -> None:
    # given a safe production environment with a separate, strong JWT signing key
    # when the settings load
    result = _load_settings(JWT_SIGNING_KEY="j" * 64)

    # then they start
    assert result.returncode == 0, result.stderr
