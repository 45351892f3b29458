"""/api/docs/ in Chromium with the network limited to the server: Swagger UI comes from this
process (drf-spectacular-sidecar), so the page lists every operation without any other host."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.e2e import BASE_DIR, Stack, Wire

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_docs_page_lists_the_operations_with_no_outside_request(
    stack: Stack, page: tuple[Any, Wire]
) -> None:
    # given: every request to a host other than the server is aborted, and recorded
    browser_page, wire = page
    server = urlsplit(stack.url).netloc
    outside: list[str] = []

    def only_the_server(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).netloc == server or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    browser_page.context.route("**/*", only_the_server)

    # when
    browser_page.goto(f"{stack.url}/api/docs/")
    browser_page.wait_for_selector(".opblock", timeout=15_000)

    # then: the operations are listed, the WebSocket protocol is pointed to
    summaries = browser_page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/jobs/" in summaries
    assert "/api/v1/jobs/{job_id}/progress/" in summaries
    assert "/media/videos/{video_id}/progress/" in summaries
    assert len(summaries) == _documented_operations()
    assert "docs/PROTOCOL.md" in browser_page.locator(".information-container").inner_text()
    # ...and nothing but the server was asked for anything
    assert outside == []
    assert {urlsplit(url).netloc for _t, _m, url in wire.requests} == {server}


def _documented_operations() -> int:
    """How many operations the committed OpenAPI document has (each is one block on the page)."""
    document = json.loads(
        (BASE_DIR / "frontend-client" / "test" / "openapi" / "schema.json").read_text()
    )
    methods = {"get", "post", "put", "patch", "delete"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)
