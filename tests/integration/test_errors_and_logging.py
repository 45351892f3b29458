"""One error shape everywhere; a request id on every log line of a request."""

from __future__ import annotations

import io
import logging

import pytest
from django.conf import settings
from django_guid.log_filters import CorrelationId
from rest_framework.test import APIClient

from tests.support.members import PASSWORD, Member


@pytest.mark.django_db
def test_unknown_url_is_404_in_the_error_shape(api: APIClient) -> None:
    # given a URL the API does not have
    # when it is requested
    response = api.get("/api/v1/no-such-thing/")

    # then the 404 is in the error shape
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}


@pytest.mark.django_db
def test_malformed_json_is_400_in_the_error_shape(api: APIClient) -> None:
    # given a body that is not JSON
    # when it is posted
    response = api.post("/api/v1/auth/token/", data="{not json", content_type="application/json")

    # then the 400 is a parse error
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_request_id_is_on_every_log_line_and_echoed(api: APIClient, alpha_staff: Member) -> None:
    # given the project's own console filter and formatter, writing to a buffer
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CorrelationId())
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["text"]["format"]))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        # when a request with a request id logs in
        response = api.post(
            "/api/v1/auth/token/",
            {"username": "alpha-staff", "password": PASSWORD, "tenant": "alpha"},
            format="json",
            HTTP_X_REQUEST_ID="req-4242",
        )
    finally:
        root.removeHandler(handler)

    # then the id is echoed and on the log line
    assert response["X-Request-ID"] == "req-4242"
    lines = [line for line in stream.getvalue().splitlines() if "token issued" in line]
    assert len(lines) == 1
    assert "[req-4242]" in lines[0]
