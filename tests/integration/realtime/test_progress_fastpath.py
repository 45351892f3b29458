"""GET …/progress/ through the ASGI application: the fast path in front of Django.

These tests have no database access, so any SQL would fail them: the fast path answers with
zero queries. Each answer is compared with what the Django view gives for the same request.
"""

from __future__ import annotations

import json
import uuid

import pytest
from channels.testing import HttpCommunicator
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
