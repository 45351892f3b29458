"""project/middleware.py: Django's classic middleware as sync-only subclasses.

Real requests through Django's ASGI application (a fresh ``ASGIHandler`` per request, so that
``override_settings(MIDDLEWARE=...)`` takes effect): the subclasses answer as Django's own do
(security headers, CSRF refusal, a session that logs an operator in), and the chain costs one
``sync_to_async`` thread hop under ASGI instead of one per hook of each class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.asgi import get_asgi_application
from django.test import override_settings
from django.utils.module_loading import import_string

pytestmark = pytest.mark.django_db

# What settings.MIDDLEWARE listed before project/middleware.py, the Django classes themselves.
ORIGINALS = [
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
REQUEST_ID_ONLY = ["django_guid.middleware.guid_middleware"]


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        return ", ".join(self.headers.get(name.lower(), []))

    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        for line in self.headers.get("set-cookie", []):
            jar.load(line)
        return {name: morsel.value for name, morsel in jar.items()}


def asgi_request(
    method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> Answer:
    """One HTTP request through a fresh Django ASGI application, as a server would send it."""
    raw = [(b"host", b"testserver")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> Answer:
        communicator = ApplicationCommunicator(get_asgi_application(), scope)
        await communicator.send_input({"type": "http.request", "body": body})
        start = await communicator.receive_output(10)
        chunks = []
        while True:
            message = await communicator.receive_output(10)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await communicator.wait(10)
        headers_out: dict[str, list[str]] = {}
        for name, value in start["headers"]:
            headers_out.setdefault(name.decode().lower(), []).append(value.decode())
        return Answer(start["status"], headers_out, b"".join(chunks))

    return async_to_sync(run)()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the callables handed to ``sync_to_async`` while the test runs."""
    calls: list[str] = []
    original = SyncToAsync.__call__

    async def counted(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return calls


def _classic(dotted: str) -> bool:
    return isinstance(import_string(dotted), type)


def test_every_classic_middleware_in_settings_is_a_sync_only_subclass_of_djangos() -> None:
    # given the project's chain and the Django classes it replaced
    classic = [dotted for dotted in settings.MIDDLEWARE if _classic(dotted)]

    # then each class is the same Django class, sync capable only, in the same order
    assert len(classic) == len([d for d in ORIGINALS if _classic(d)])
    for dotted, original in zip(classic, [d for d in ORIGINALS if _classic(d)], strict=True):
        middleware = import_string(dotted)
        assert issubclass(middleware, import_string(original)), dotted
        assert (middleware.sync_capable, middleware.async_capable) == (True, False), dotted


def test_the_chain_costs_one_thread_hop_under_asgi_not_one_per_hook(hops: list[str]) -> None:
    # given the same sync view (the jobs list, a DRF view; no token) behind three chains
    def hops_for(middleware: list[str]) -> list[str]:
        with override_settings(MIDDLEWARE=middleware):
            hops.clear()
            assert asgi_request("GET", "/api/v1/jobs/").status == 401
            return list(hops)

    # when it is requested through each
    alone = hops_for(REQUEST_ID_ONLY)
    originals = hops_for(ORIGINALS)
    project = hops_for(settings.MIDDLEWARE)

    # then Django's own classes hop per hook (14 hooks of 8 classes, and CSRF's view hook);
    # the project's chain hops once, plus CSRF's view hook, which Django's async core calls
    hooks = ("process_request", "process_response")
    assert len(originals) - len(alone) >= 14, originals
    assert len([name for name in originals if name.endswith(hooks)]) == 14, originals
    assert len(project) - len(alone) == 2, (alone, project)
    assert not [name for name in project if name.endswith(hooks)], project


def test_the_security_headers_are_those_of_djangos_classes() -> None:
    # given the same page through Django's classes and through the project's
    with override_settings(MIDDLEWARE=ORIGINALS):
        theirs = asgi_request("GET", "/admin/login/")
    ours = asgi_request("GET", "/admin/login/")

    # then the security middleware's and the clickjacking middleware's headers are the same
    for name in (
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
        "X-Frame-Options",
        "Content-Language",
        "Vary",
    ):
        assert ours.header(name) == theirs.header(name), name
    assert ours.header("X-Content-Type-Options") == "nosniff"
    assert ours.header("X-Frame-Options") == "DENY"
    assert "csrftoken" in ours.cookies()


def test_a_post_without_the_csrf_token_is_refused() -> None:
    # given the admin's login form, posted without the CSRF cookie and token
    form = b"username=operator&password=op-pass-123"
    headers = {"content-type": "application/x-www-form-urlencoded"}

    # when it is posted
    answer = asgi_request("POST", "/admin/login/", body=form, headers=headers)

    # then the CSRF middleware refuses it
    assert answer.status == 403
    assert b"CSRF" in answer.body


@pytest.mark.django_db(transaction=True)  # the request's thread has its own connection
def test_a_login_with_the_token_opens_a_session_that_the_next_request_is_authenticated_by() -> None:
    # given an operator and the login page's CSRF cookie and token
    get_user_model().objects.create_superuser("operator", "", "op-pass-123")
    page = asgi_request("GET", "/admin/login/")
    csrf_cookie = page.cookies()["csrftoken"]
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    assert found is not None
    token = found.group(1).decode()

    # when the operator logs in with them
    form = f"csrfmiddlewaretoken={token}&username=operator&password=op-pass-123&next=/admin/"
    login = asgi_request(
        "POST",
        "/admin/login/",
        body=form.encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "cookie": f"csrftoken={csrf_cookie}",
        },
    )

    # then a session cookie comes back, and a request carrying it is the operator's
    assert login.status == 302, re.findall(rb"errornote.{0,300}", login.body, re.S)
    session = login.cookies()[settings.SESSION_COOKIE_NAME]
    index = asgi_request("GET", "/admin/", headers={"cookie": f"sessionid={session}"})
    assert index.status == 200
    assert b"operator" in index.body
    anonymous = asgi_request("GET", "/admin/")
    assert anonymous.status == 302  # to the login page
