"""The demo page, a real browser, a real server and worker: socket, fallback, restart, silence."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest

from tests.support.e2e import Stack, Wire, shot, state_frames, wait_done

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _open(page: Any, stack: Stack, query: str = "") -> None:
    page.goto(f"{stack.url}/demo/?lang=en{query}")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#job-panel:not([hidden])", timeout=10_000)


def _start(page: Any, recipients: int) -> str:
    page.fill("#start input[name=recipients]", str(recipients))
    page.click("#start button[type=submit]")
    page.wait_for_selector("#watch-panel:not([hidden])", timeout=10_000)
    return str(page.text_content("#topic"))


def _job_requests(wire: Wire, topic: str, after: float = 0.0) -> list[tuple[float, str]]:
    job_id = topic.split(":", 1)[1]
    return [(t, url) for t, _m, url in wire.requests if job_id in url and t > after]


def test_a_job_reaches_done_over_the_socket_then_all_traffic_stops(
    stack: Stack, page: tuple[Any, Wire]
) -> None:
    # given the demo page, logged in, watching over the socket
    browser_page, wire = page
    _open(browser_page, stack)
    shot(browser_page, "demo-1-login.png")

    # when a job of 60 recipients runs to DONE
    topic = _start(browser_page, recipients=60)
    browser_page.wait_for_function(
        "Number(document.querySelector('#bar').value) > 0", timeout=10_000
    )
    shot(browser_page, "demo-2-running.png")
    done_at = wait_done(browser_page, timeout_s=30)
    shot(browser_page, "demo-3-done.png")
    time.sleep(3)  # anything still flowing for this topic would show up now

    # then every state arrived in order over the socket, without polling and nothing after DONE
    assert browser_page.text_content("#status") == "DONE"
    assert json.loads(str(browser_page.text_content("#result")))["sent"] == 60
    states = state_frames(wire, topic)
    seqs = [s["seq"] for s in states]
    assert seqs == sorted(set(seqs))
    assert states[-1]["status"] == "DONE"
    # Over the socket: no progress polling at all, and nothing for the topic after DONE.
    assert [url for _t, url in _job_requests(wire, topic) if "/progress/" in url] == []
    assert _job_requests(wire, topic, after=done_at) == []
    assert [t for t, _text in wire.frames_in if t > done_at + 0.5] == []


def test_with_the_socket_blocked_it_finishes_over_polling_on_the_adaptive_schedule(
    stack: Stack, page: tuple[Any, Wire]
) -> None:
    # given the demo page with the socket blocked
    browser_page, wire = page
    _open(browser_page, stack, "&socket=off")

    # when a job of 320 recipients runs to DONE over polling
    topic = _start(browser_page, recipients=320)  # ~16 s at 20 recipients/s
    done_at = wait_done(browser_page, timeout_s=60)
    time.sleep(3.5)

    # then polls came about every second at first, every two seconds later, and stopped at DONE
    assert browser_page.text_content("#status") == "DONE"
    polls = [t for t, url in _job_requests(wire, topic) if "/progress/" in url]
    assert len(polls) >= 10
    start = polls[0] - 1.0  # the first poll is due 1 s into the watch
    gaps = [(b - start, b - a) for a, b in itertools.pairwise(polls)]
    early = [gap for at, gap in gaps if at < 9.5]
    later = [gap for at, gap in gaps if 11 < at < 59]
    assert early
    assert all(0.8 <= gap <= 1.4 for gap in early), early
    assert later
    assert all(1.8 <= gap <= 2.5 for gap in later), later
    assert [t for t in polls if t > done_at] == []  # polling stopped at DONE
    assert wire.frames_in == []  # the socket never carried anything


def test_a_server_restart_mid_job_reconnects_and_finishes(
    stack: Stack, page: tuple[Any, Wire]
) -> None:
    # given the demo page watching a long job over the socket
    browser_page, wire = page
    _open(browser_page, stack)
    # ~30 s: long enough that the reconnect lands before DONE. The server is away ~4 s and
    # the client's backoff has full jitter, so its 5th attempt can come up to ~12 s after the
    # restart; a job shorter than that could finish over polling, never resuming the socket.
    topic = _start(browser_page, recipients=600)
    browser_page.wait_for_function(
        "Number(document.querySelector('#bar').value) > 5", timeout=15_000
    )

    # when the server restarts mid-job
    stack.stop_server()
    time.sleep(2)
    stack.start_server()
    wait_done(browser_page, timeout_s=90)

    # then the page reconnected, resumed from its last seq and finished
    assert browser_page.text_content("#status") == "DONE"
    assert len(wire.sockets) >= 2  # it reconnected
    seqs = [s["seq"] for s in state_frames(wire, topic)]
    assert seqs == sorted(set(seqs))
    resubscribes = [json.loads(text) for _t, text in wire.frames_out if '"subscribe"' in text]
    assert any(frame.get("since") for frame in resubscribes[1:])  # resumed from its last seq
