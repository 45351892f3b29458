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
}


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
    result = _load_settings()

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
    result = _load_settings(**overrides)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert reason in result.stderr
