"""Every path under /api/ and /media/ answers 404 and 405 in the JSON error shape, DEBUG too.

Django answers an unknown path with its technical 404 page when DEBUG is on; under these
prefixes a JSON client must get ``{code, detail, fields}`` in every environment.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client, override_settings

from tests.conftest import Member

pytestmark = pytest.mark.django_db

SHAPE = {"code", "detail", "fields"}
UNKNOWN_PATHS = [
    "/api/",
    "/api/nothing/here",
    "/api/v1/jobs/not-a-uuid/",
    "/api/v1/jobs",  # no trailing slash: no redirect, the path does not exist
    f"/api/v1/jobs/{uuid.uuid4()}/nothing/",
    "/media/",
    "/media/lectures/",
    "/media/videos/not-a-uuid/progress/",
    "/api/docs/assets/../settings.py",
    "/api/docs/assets/not-an-asset.js",
]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_paths_answer_a_json_404(method: str, path: str, debug: bool) -> None:
    # given
    client = Client()

    # when
    with override_settings(DEBUG=debug):
        response = getattr(client, method)(path)

    # then
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == SHAPE
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", f"/api/v1/jobs/{uuid.uuid4()}/", "GET"),
        ("put", "/api/v1/auth/token/", "POST"),
        ("post", f"/api/v1/jobs/{uuid.uuid4()}/progress/", "GET"),
        ("patch", f"/media/videos/{uuid.uuid4()}/progress/", "GET"),
        ("delete", f"/media/videos/{uuid.uuid4()}/", "GET"),
        ("post", "/api/schema/", "GET"),
        ("post", "/api/docs/", "GET"),
        ("put", "/api/docs/assets/swagger-ui.css", "GET"),
    ],
)
def test_known_paths_answer_a_json_405(
    method: str, path: str, allowed: str, debug: bool, alpha_staff: Member
) -> None:
    # given: an authenticated caller (DRF authenticates before it looks at the method)
    client = Client(headers={"Authorization": f"Bearer {alpha_staff.access_token()}"})

    # when
    with override_settings(DEBUG=debug):
        response = getattr(client, method)(path)

    # then
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "method_not_allowed"
    assert set(response.json()) == SHAPE
    assert allowed in response["Allow"]


@pytest.mark.parametrize("path", ["/health/", "/health/ready/"])
def test_probes_refuse_other_methods_without_a_csrf_page(path: str) -> None:
    # given
    client = Client(enforce_csrf_checks=True)

    # when
    response = client.post(path)

    # then
    assert response.status_code == 405
    assert "GET" in response["Allow"]


def test_a_body_the_view_does_not_read_is_415_in_the_error_shape() -> None:
    # given
    client = Client()

    # when: form encoding, which the token endpoint does not read
    response = client.post(
        "/api/v1/auth/token/",
        "username=a&password=b&tenant=c",
        content_type="application/x-www-form-urlencoded",
    )

    # then
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_the_docs_page_and_its_assets_are_served_here() -> None:
    # given
    client = Client()

    # when
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")
    bundle = client.get("/api/docs/assets/swagger-ui-bundle.js")

    # then: every URL of the page is on this server
    html = page.content.decode()
    assert page.status_code == 200
    assert "/api/docs/assets/swagger-ui-bundle.js" in html
    assert "http://" not in html
    assert "https://" not in html
    assert script.status_code == 200
    assert '"validatorUrl": null' in script.content.decode()
    assert bundle.status_code == 200
    assert bundle["Content-Type"] == "text/javascript"
    assert b"".join(bundle.streaming_content).startswith(b"/*!")
