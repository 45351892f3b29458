"""The OpenAPI document: committed as the client's types are generated from it, and complete.

``frontend-client/test/openapi/schema.json`` is what the server generates; the TypeScript
types are generated from it and checked against the client's hand-written ones. So a server
change that would break the client first fails here (run ``make openapi``), then in
``npm run typecheck``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

COMMITTED = settings.BASE_DIR / "frontend-client" / "test" / "openapi" / "schema.json"
ERROR_REF = "#/components/schemas/Error"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema, renderer_context={}))


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_the_committed_document_is_what_the_server_generates(document: dict[str, Any]) -> None:
    # given
    committed = json.loads(COMMITTED.read_text())

    # when / then
    assert committed == document, "the API changed: run `make openapi` and commit the result"


def test_every_operation_of_the_api_is_described(document: dict[str, Any]) -> None:
    # given / when
    described = {(path, method) for path, method, _op in _operations(document)}

    # then: the progress endpoints (ASGI fast path) and the health probes included
    assert {
        ("/api/v1/auth/token/", "post"),
        ("/api/v1/auth/token/refresh/", "post"),
        ("/api/v1/auth/password/", "post"),
        ("/api/v1/auth/me/", "get"),
        ("/api/v1/jobs/", "get"),
        ("/api/v1/jobs/", "post"),
        ("/api/v1/jobs/{job_id}/", "get"),
        ("/api/v1/jobs/{job_id}/progress/", "get"),
        ("/api/v1/jobs/{job_id}/failures.xlsx", "get"),
        ("/api/v1/jobs/{job_id}/cancel/", "post"),
        ("/media/videos/", "get"),
        ("/media/videos/", "post"),
        ("/media/videos/{video_id}/", "get"),
        ("/media/videos/{video_id}/complete-upload/", "post"),
        ("/media/videos/{video_id}/cancel/", "post"),
        ("/media/videos/{video_id}/playlist.m3u8", "get"),
        ("/media/videos/{video_id}/hls/{rung}/index.m3u8", "get"),
        ("/media/videos/{video_id}/progress/", "get"),
        ("/health/", "get"),
        ("/health/ready/", "get"),
    } == described


def test_every_error_answer_is_the_error_component_with_an_example(
    document: dict[str, Any],
) -> None:
    # given the document the server serves (the fixture)
    # when every non-2xx answer of every operation is read
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                continue
            media = response["content"]["application/json"]
            # then
            assert media["schema"] == {"$ref": ERROR_REF}, (path, method, status)
            assert media["examples"], (path, method, status)
            for example in media["examples"].values():
                assert set(example["value"]) == {"code", "detail", "fields"}


def test_every_success_answer_has_an_example(document: dict[str, Any]) -> None:
    # given the document the server serves (the fixture)
    # when every 2xx answer with a JSON body is read
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            json_body = response.get("content", {}).get("application/json")
            if status.startswith("2") and json_body is not None:
                # then
                assert json_body.get("examples"), (path, method, status)


def test_authenticated_operations_document_401_and_the_password_change_gate(
    document: dict[str, Any],
) -> None:
    # given: the views that a user with an initial password may still call
    open_before_change = {("/api/v1/auth/me/", "get"), ("/api/v1/auth/password/", "post")}
    fast_path = {"/api/v1/jobs/{job_id}/progress/", "/media/videos/{video_id}/progress/"}
    # when every operation that needs a token is read
    for path, method, operation in _operations(document):
        if operation.get("security") in (None, [{}], []):
            continue
        # then
        assert "401" in operation["responses"], (path, method)
        gated = (path, method) not in open_before_change and path not in fast_path
        codes = {
            example["value"]["code"]
            for example in (
                operation["responses"].get("403", {}).get("content", {}).get("application/json", {})
            )
            .get("examples", {})
            .values()
        }
        assert ("password_change_required" in codes) == gated, (path, method)


def test_job_creation_reads_one_schema_per_job_type_and_the_multipart_upload(
    document: dict[str, Any],
) -> None:
    # given
    body = document["paths"]["/api/v1/jobs/"]["post"]["requestBody"]["content"]
    schemas = document["components"]["schemas"]

    # when
    union = schemas[body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    upload = schemas[body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]

    # then
    assert union["discriminator"]["propertyName"] == "job_type"
    assert set(union["discriminator"]["mapping"]) == {"messaging.send"}
    assert set(body) == {"application/json", "multipart/form-data"}
    assert upload["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": upload["properties"]["file"]["description"],
    }
    assert {"file", "initial_password", "job_type"} <= set(upload["required"])


def test_headers_that_matter_are_documented(document: dict[str, Any]) -> None:
    # given
    create = document["paths"]["/api/v1/jobs/"]["post"]
    progress = document["paths"]["/api/v1/jobs/{job_id}/progress/"]["get"]

    # when their header parameters and response headers are read
    # then
    assert [p["name"] for p in create["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]
    assert create["responses"]["202"]["headers"]["Location"]["required"] is True
    assert create["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    assert progress["responses"]["503"]["headers"]["Retry-After"]["required"] is True


def test_complete_upload_documents_its_job_quota_answer(document: dict[str, Any]) -> None:
    # given the operation that queues a video's encode job
    complete = document["paths"]["/media/videos/{video_id}/complete-upload/"]["post"]

    # when its 429 answer is read
    refused = complete["responses"]["429"]

    # then it is the job quota, as an Error example, with the Retry-After header
    examples = refused["content"]["application/json"]["examples"].values()
    assert [example["value"]["code"] for example in examples] == ["quota_exceeded"]
    assert refused["headers"]["Retry-After"]["required"] is True


def test_the_description_points_to_the_websocket_protocol(document: dict[str, Any]) -> None:
    # given the document the server serves (the fixture)
    # when its description is read
    # then it names the WebSocket protocol and its path
    assert "docs/PROTOCOL.md" in document["info"]["description"]
    assert "/ws/v1/" in document["info"]["description"]
