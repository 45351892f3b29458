"""GET …/progress/ through the ASGI application: the fast path in front of Django.

These tests have no database access, so any SQL would fail them: the fast path answers with
zero queries. Each answer is compared with what the Django view gives for the same request.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import jwt
import pytest
from asgiref.compatibility import guarantee_single_callable
from channels.testing import HttpCommunicator
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from project import devservices
from project.asgi import application
from realtime import clients, fastpath, store
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.support.tokens import ALPHA, BETA, make_token

HOST = (b"host", b"127.0.0.1:8000")


async def get(
    path: str,
    *,
    token: str | None = None,
    method: str = "GET",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, dict[bytes, bytes], bytes]:
    extra = extra or []
    headers = [*([] if any(name == b"host" for name, _v in extra) else [HOST]), *extra]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    response = await HttpCommunicator(application, method, path, headers=headers).get_response(
        timeout=5
    )
    return response["status"], dict(response["headers"]), response["body"]


async def _running_job(tenant_id: int = ALPHA, owner_id: int = 7) -> Topic:
    topic = Topic.job(uuid.uuid4())
    await store.apublish(tenant_id, topic, Change(status="PENDING", owner_id=owner_id))
    await store.apublish(
        tenant_id, topic, Change(status="PROCESSING", attempt=1, progress=Progress(percent=42))
    )
    return topic


def _path(topic: Topic) -> str:
    return f"/api/v1/jobs/{topic.id}/progress/"


async def test_the_state_document_comes_from_redis_with_headers_and_no_sql() -> None:
    # given a running job of alpha in Redis
    topic = await _running_job()

    # when its progress is fetched through the fast path
    status, headers, body = await get(_path(topic), token=make_token())

    # then the answer is the state document, with the security headers
    assert status == 200
    assert json.loads(body) == json.loads((await store.asnapshot(ALPHA, topic)).document)  # type: ignore[union-attr]
    assert json.loads(body)["progress"]["percent"] == 42
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
    assert len(headers[b"x-request-id"]) == 32  # generated when the client sent none


async def test_a_video_topic_is_served_the_same_way() -> None:
    # given a video's state in Redis
    topic = Topic.video(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PROCESSING", owner_id=7, attempt=1))

    # when its progress is fetched
    status, _headers, body = await get(f"/media/videos/{topic.id}/progress/", token=make_token())

    # then it is served like a job's
    assert status == 200
    assert json.loads(body)["topic"] == str(topic)


async def test_another_tenants_topic_does_not_exist_for_the_caller() -> None:
    # given a running job of alpha
    topic = await _running_job(tenant_id=ALPHA)

    # when beta's token asks for it
    status, _headers, body = await get(_path(topic), token=make_token(tenant_id=BETA))

    # then it does not exist
    assert status == 404
    assert json.loads(body)["code"] == "not_found"


async def test_another_users_job_is_hidden_from_a_student() -> None:
    # given a running job of user 7
    topic = await _running_job(owner_id=7)

    # when its owner and another student ask for it
    mine = await get(_path(topic), token=make_token(user_id=7, role="student"))
    theirs = await get(_path(topic), token=make_token(user_id=8, role="student"))

    # then only the owner sees it
    assert (mine[0], theirs[0]) == (200, 404)


@pytest.mark.parametrize(
    "token",
    [None, "not.a.token", make_token(lifetime=-5)],
    ids=["missing", "malformed", "expired"],
)
async def test_no_valid_token_is_401_in_the_error_shape(token: str | None) -> None:
    # given a running job and a token that is missing, malformed or expired (the parameters)
    topic = await _running_job()

    # when its progress is fetched
    status, headers, body = await get(_path(topic), token=token)

    # then it is 401 in the error shape, with the challenge
    assert status == 401
    assert headers[b"www-authenticate"] == b'Bearer realm="api"'
    assert set(json.loads(body)) == {"code", "detail", "fields"}


async def test_errors_speak_the_callers_language_and_the_request_id_is_kept() -> None:
    # given a Korean-preferring caller with a request id, asking for an unknown job
    # when the progress is fetched
    status, headers, body = await get(
        f"/api/v1/jobs/{uuid.uuid4()}/progress/",
        token=make_token(),
        extra=[(b"accept-language", b"en;q=0.5, ko-KR;q=0.9"), (b"x-request-id", b"req-1")],
    )

    # then the 404 is in Korean and the request id comes back
    assert status == 404
    assert json.loads(body)["detail"] == "찾을 수 없습니다."
    assert headers[b"x-request-id"] == b"req-1"


async def test_redis_down_is_503_with_retry_after() -> None:
    # given a Redis that does not answer
    # when progress is fetched
    clients.reset_clients()
    try:
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{devservices.free_port()}/0"):
            status, headers, body = await get(
                f"/api/v1/jobs/{uuid.uuid4()}/progress/", token=make_token()
            )
    finally:
        clients.reset_clients()

    # then it is 503 with Retry-After
    assert status == 503
    assert headers[b"retry-after"] == b"2"
    assert json.loads(body)["code"] == "unavailable"


async def test_head_has_the_headers_and_no_body() -> None:
    # given a running job
    topic = await _running_job()

    # when HEAD asks for its progress
    status, headers, body = await get(_path(topic), token=make_token(), method="HEAD")

    # then the headers come without a body
    assert (status, body) == (200, b"")
    assert int(headers[b"content-length"]) > 0


@pytest.mark.django_db
async def test_what_the_fast_path_does_not_answer_goes_to_django() -> None:
    # given a running job
    topic = await _running_job()

    # when a POST and a request with a foreign Host arrive
    post = await get(_path(topic), token=make_token(), method="POST")
    bad_host = await get(_path(topic), token=make_token(), extra=[(b"host", b"evil.example")])

    # then Django answers them, not the fast path
    assert post[0] == 405  # Django's view allows GET only
    assert json.loads(post[2])["code"] == "method_not_allowed"
    assert bad_host[0] == 400  # Django refuses a Host outside ALLOWED_HOSTS


def test_the_fast_path_serves_exactly_the_django_progress_routes() -> None:
    # given a job and a video id
    job, video = uuid.uuid4(), uuid.uuid4()

    # when/then the fast path routes exactly the progress URLs Django reverses, nothing else
    assert fastpath.route(reverse("job-progress", kwargs={"job_id": job})) == Topic.job(job)
    assert fastpath.route(reverse("video-progress", kwargs={"video_id": video})) == Topic.video(
        video
    )
    assert fastpath.route(reverse("job-detail", kwargs={"job_id": job})) is None
    assert fastpath.route(f"/api/v1/jobs/{job}/progress/extra/") is None


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (b"", "en"),
        (b"ko", "ko"),
        (b"fr-FR, ko;q=0.8", "ko"),
        (b"ko;q=0.1, en;q=0.9", "en"),
        (b"*", "en"),
        (b"ko;q=abc, en", "en"),
    ],
)
def test_accept_language_picks_the_first_supported_language(header: bytes, language: str) -> None:
    # given an Accept-Language header (the parameters)
    # when/then the first supported language wins, English by default
    assert fastpath._language(header) == language


def test_a_generated_request_id_is_a_uuid4_in_hex() -> None:
    # given/when a few request ids are generated
    ids = [fastpath.request_id() for _ in range(200)]

    # then each is 32 hex digits of a version 4, RFC 4122 UUID, and they differ
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)


def test_the_remembered_routes_are_bounded_and_stay_right() -> None:
    # given more distinct paths than the route memory holds, progress paths among them
    job = uuid.uuid4()
    paths = [f"/api/v1/jobs/{uuid.uuid4()}/" for _ in range(fastpath.ROUTE_CACHE_SIZE + 10)]

    # when they are all routed, and a progress path before and after
    first = fastpath.route(f"/api/v1/jobs/{job}/progress/")
    for path in paths:
        assert fastpath.route(path) is None
    again = fastpath.route(f"/api/v1/jobs/{job}/progress/")

    # then the memory never holds more than its bound, and the answers did not change
    assert len(fastpath._routes) <= fastpath.ROUTE_CACHE_SIZE
    assert first == again == Topic.job(job)


async def test_the_fast_path_adds_no_frame_and_passes_the_rest_on_as_is() -> None:
    # given the fast path around an app that records its calls
    calls: list[tuple[Any, ...]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send))

    wrapped = fastpath.ProgressFastPath(inner)
    scope = {"type": "http", "method": "GET", "path": "/api/v1/jobs/", "headers": [HOST]}

    # when a request that is not a progress read arrives
    awaitable = wrapped(scope, None, None)  # type: ignore[arg-type]
    await awaitable

    # then the coroutine returned is the inner app's own, called with the same objects, and
    # servers see an ASGI 3 application (a coroutine function, single callable)
    assert awaitable.cr_code is inner.__code__  # type: ignore[attr-defined]
    assert calls == [(scope, None, None)]
    assert asyncio.iscoroutinefunction(wrapped.__call__)
    assert guarantee_single_callable(wrapped) is wrapped


async def test_the_fixed_headers_follow_overridden_settings() -> None:
    # given a running job, read once so the fixed headers are built
    topic = await _running_job()
    await get(_path(topic), token=make_token())

    # when X-Frame-Options is overridden, and then restored
    with override_settings(X_FRAME_OPTIONS="SAMEORIGIN"):
        _status, overridden, _body = await get(_path(topic), token=make_token())
    _status, restored, _body = await get(_path(topic), token=make_token())

    # then each answer has the value of its time
    assert overridden[b"x-frame-options"] == b"SAMEORIGIN"
    assert restored[b"x-frame-options"] == b"DENY"


def test_the_host_verdicts_follow_overridden_settings() -> None:
    # given a Host outside ALLOWED_HOSTS, judged once
    host = b"progress.example:8000"
    assert not fastpath._host_allowed(host)

    # when ALLOWED_HOSTS is overridden to include it, and then restored
    with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "progress.example"]):
        overridden = fastpath._host_allowed(host)
    restored = fastpath._host_allowed(host)

    # then each verdict is that of the settings of its time
    assert (overridden, restored) == (True, False)


async def test_the_token_check_follows_an_overridden_signing_key() -> None:
    # given a running job, a token signed with the configured key (accepted once), and the
    # same claims signed with another key
    topic = await _running_job()
    old_token = make_token()
    assert (await get(_path(topic), token=old_token))[0] == 200

    # when the signing key is overridden, and then restored
    key = settings.SIMPLE_JWT["SIGNING_KEY"]
    new_token = jwt.encode(jwt.decode(old_token, key, algorithms=["HS256"]), "k" * 64, "HS256")
    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "SIGNING_KEY": "k" * 64}):
        during = [(await get(_path(topic), token=t))[0] for t in (old_token, new_token)]
    after = [(await get(_path(topic), token=t))[0] for t in (old_token, new_token)]

    # then only the token signed with the key of the time is accepted
    assert during == [401, 200]
    assert after == [200, 401]


async def test_the_redis_connection_follows_an_overridden_url() -> None:
    # given a running job, read once so this loop's connection is remembered
    topic = await _running_job()
    assert (await get(_path(topic), token=make_token()))[0] == 200

    # when REDIS_URL is overridden with a Redis that does not answer, and then restored
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{devservices.free_port()}/0"):
        during, _headers, _body = await get(_path(topic), token=make_token())
    after, _headers, _body = await get(_path(topic), token=make_token())

    # then the read used the URL of its time
    assert (during, after) == (503, 200)
