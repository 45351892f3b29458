"""pytest plugin (``-p project.testing``): resolve services before Django is set up.

It runs before pytest-django evaluates settings, so the test run uses exactly the resolution
of ``make demo`` (:mod:`project.devservices`): configured URLs first, then PostgreSQL and Redis
on their default local ports, else embedded ones. moto's server is always started in-process
for the run, bound to 127.0.0.1, unless ``AWS_ENDPOINT_URL`` points elsewhere.
"""

from __future__ import annotations

import atexit
import os

import pytest

from project import devservices

# Tests use their own Redis database so a running `make demo` keeps its state.
TEST_REDIS_DB = 15


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    os.environ.setdefault("DJANGO_ENV", "test")
    services = devservices.ensure_services(redis_db=TEST_REDIS_DB, with_moto=True)
    atexit.register(services.stop)
    for name, value in services.env.items():
        os.environ[name] = value
