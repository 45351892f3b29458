"""The video demo page in Chromium: the sample lecture uploaded straight to S3 (moto's server),
encoded by a real ``run_worker --queue video`` process with Debian's ffmpeg, watched over the
WebSocket, and played with hls.js from the API's signed playlists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import NoReverseMatch, reverse

from project import demo_video
from tests.support.e2e import DEMO_CACHE, Stack, Wire, shot, state_frames, wait_done

# The encode runs on two cores shared with other runs; setup and teardown start and stop processes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(420)]

ENCODE_TIMEOUT_S = 180  # two cores shared with other runs: a 10 s 720p ladder, generously


def _cancel_route_exists() -> bool:
    try:
        reverse("video-cancel", kwargs={"video_id": "3f2b8a1c-0d4e-4c6b-9a51-2e7f10b4c8d9"})
    except NoReverseMatch:
        return False
    return True


@pytest.fixture
def video_stack(stack: Stack, tmp_path: Path) -> Stack:
    """The sample lecture made, as ``make demo`` makes it at startup, and a video worker."""
    demo_video.sample_lecture_ensure(DEMO_CACHE)
    stack.env["VIDEO_WORK_ROOT"] = str(tmp_path / "work")
    stack.start_worker("video")
    return stack


def _open(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.url}/demo/video/?lang=en")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#upload-panel:not([hidden])", timeout=10_000)


def _step_state(page: Any, step: str) -> str:
    return str(page.get_attribute(f"#steps li[data-step={step}]", "data-state"))


def test_the_sample_lecture_uploads_encodes_live_and_plays_with_hls_js(
    video_stack: Stack, page: tuple[Any, Wire]
) -> None:
    # given the video page, logged in
    browser_page, wire = page
    _open(browser_page, video_stack)

    # when the sample lecture is uploaded
    browser_page.click("#sample")
    browser_page.wait_for_selector("#watch-panel:not([hidden])", timeout=30_000)
    topic = str(browser_page.text_content("#topic"))
    video_id = topic.split(":", 1)[1]
    browser_page.wait_for_function(
        "document.body.dataset.done || (document.querySelector("
        "'#steps li[data-step=encoding]').dataset.state === 'current'"
        " && Number(document.querySelector('#bar').value) > 30)",
        timeout=ENCODE_TIMEOUT_S * 1000,
    )
    shot(browser_page, "demo-video-1-encoding.png")
    wait_done(browser_page, timeout_s=ENCODE_TIMEOUT_S)

    # then it is READY with every step done
    assert browser_page.evaluate("document.body.dataset.done") == "READY"
    assert browser_page.text_content("#status") == "READY"
    assert [
        _step_state(browser_page, step)
        for step in ("sending", "probing", "encoding", "uploading", "finalizing")
    ] == ["done"] * 5
    # and its states came over the socket, in order, through the encode's steps
    states = state_frames(wire, topic)
    assert [s["seq"] for s in states] == sorted({s["seq"] for s in states})
    statuses = [s["status"] for s in states]
    assert statuses[-1] == "READY"
    assert "PROCESSING" in statuses
    progress = [s["progress"] for s in states if s.get("progress")]
    steps = [p["step"] for p in progress]
    assert "encoding" in steps
    assert steps == sorted(steps, key=("probing", "encoding", "uploading", "finalizing").index)
    assert [p["percent"] for p in progress] == sorted(p["percent"] for p in progress)
    assert any(p["remaining_seconds"] is not None for p in progress if p["step"] == "encoding")
    assert not [url for _t, url in _requests(wire, video_id) if "/progress/" in url]
    # and the PUT went straight to storage, not through the API
    puts = [url for _t, method, url in wire.requests if method == "PUT"]
    assert len(puts) == 1
    assert f"/{video_id}/source?" in puts[0]
    assert not puts[0].startswith(video_stack.url)

    # when the player has started
    browser_page.wait_for_function("document.body.dataset.playing", timeout=30_000)
    first = float(browser_page.evaluate("document.querySelector('#player').currentTime"))

    # then its currentTime advances, from segments hls.js fetched with the signed URLs
    browser_page.wait_for_function(
        f"document.querySelector('#player').currentTime > {first} + 1", timeout=30_000
    )
    shot(browser_page, "demo-video-2-ready.png")
    urls = [url for _t, url in _requests(wire, video_id)]
    assert any(url.endswith(f"/media/videos/{video_id}/playlist.m3u8") for url in urls)
    assert any("/hls/" in url and url.split("?")[0].endswith("index.m3u8") for url in urls)
    segments = [url for _t, _m, url in wire.requests if url.split("?")[0].endswith(".ts")]
    assert segments
    assert all("X-Amz-Signature=" in url for url in segments)
    assert browser_page.text_content("#error") == ""


@pytest.mark.skipif(
    not _cancel_route_exists(), reason="POST /media/videos/{id}/cancel/ is not built yet"
)
def test_cancel_during_the_encode_ends_the_video_cancelled(
    video_stack: Stack, page: tuple[Any, Wire]
) -> None:
    # given the sample lecture encoding
    browser_page, wire = page
    _open(browser_page, video_stack)
    browser_page.click("#sample")
    browser_page.wait_for_selector("#watch-panel:not([hidden])", timeout=30_000)
    topic = str(browser_page.text_content("#topic"))
    video_id = topic.split(":", 1)[1]
    browser_page.wait_for_function(
        "document.querySelector('#steps li[data-step=encoding]').dataset.state === 'current'",
        timeout=ENCODE_TIMEOUT_S * 1000,
    )

    # when Cancel is pressed
    browser_page.click("#cancel")
    wait_done(browser_page, timeout_s=60)

    # then the page called the documented endpoint and shows CANCELLED, with no player
    posts = [url for _t, method, url in wire.requests if method == "POST"]
    assert f"{video_stack.url}/media/videos/{video_id}/cancel/" in posts
    assert browser_page.evaluate("document.body.dataset.done") == "CANCELLED"
    assert browser_page.text_content("#status") == "CANCELLED"
    assert browser_page.is_hidden("#player-panel")
    assert state_frames(wire, topic)[-1]["status"] == "CANCELLED"


def _requests(wire: Wire, video_id: str) -> list[tuple[float, str]]:
    return [(t, url) for t, _m, url in wire.requests if video_id in url]
