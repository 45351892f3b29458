"""/health/ answers without touching anything; /health/ready/ names what is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

from project import devservices
from realtime import clients


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    """Rebuild Redis and AWS clients around a test that points them elsewhere."""
    clients.reset_clients()
    yield
    clients.reset_clients()


def _dead_url(scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{devservices.free_port()}"


def test_liveness_touches_neither_database_nor_redis(client: Client, fresh_clients: None) -> None:
    # No django_db mark: pytest-django makes any database access raise. Redis points nowhere.
    with override_settings(REDIS_URL=_dead_url("redis")):
        response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_when_database_redis_and_queue_answer(client: Client, fresh_clients: None) -> None:
    response = client.get("/health/ready/")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "queue": "ok"},
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "scheme", "name"),
    [("REDIS_URL", "redis", "redis"), ("AWS_ENDPOINT_URL", "http", "queue")],
)
def test_ready_is_503_naming_what_failed(
    client: Client, fresh_clients: None, setting: str, scheme: str, name: str
) -> None:
    with override_settings(**{setting: _dead_url(scheme)}):
        response = client.get("/health/ready/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["code"] == "unavailable"
    assert set(body["fields"]) == {name}
    assert name in body["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "scheme", "name"),
    [("REDIS_URL", "redis", "redis"), ("AWS_ENDPOINT_URL", "http", "queue")],
)
def test_F22_ready_reveals_no_exception_text(
    client: Client,
    fresh_clients: None,
    caplog: pytest.LogCaptureFixture,
    setting: str,
    scheme: str,
    name: str,
) -> None:
    # given a backend that refuses connections on a known port
    url = _dead_url(scheme)
    port = url.rsplit(":", 1)[1]

    # when
    with override_settings(**{setting: url}):
        response = client.get("/health/ready/")

    # then the answer names the check and nothing of the error; the log keeps the error
    assert response.status_code == 503
    body = response.json()
    assert body["fields"] == {name: "unavailable"}
    text = response.content.decode()
    for leak in (port, "127.0.0.1", "Error", "refused", "Connect"):
        assert leak not in text
    assert any(
        name in record.getMessage() and "Error" in record.getMessage() for record in caplog.records
    )
