"""The dashboard page (/demo/dashboard/) in Chromium against the real server and workers:
staff see the tenant's jobs and videos advancing on one socket through the tenant feeds; a
teacher sees only its own items, each watched on its own topic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domains.tenants import repository
from domains.videos import storage
from realtime.identity import Role
from tests.support.dashboard import Api, Samples, make_clip, running
from tests.support.e2e import Stack, Wire, shot
from tests.support.workbooks import large_xlsx_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "demo1234"  # the e2e stack's demo password


@pytest.fixture
def workers(stack: Stack) -> Stack:
    """Every job kind's worker, the video bucket, and a teacher beside the stack's staff."""
    tenant = repository.tenant_upsert(code="alpha", name="Alpha Academy")
    repository.member_upsert(
        tenant.id, username="alpha-teacher", password=PASSWORD, role=Role.TEACHER
    )
    storage.bucket_ensure()
    stack.start_worker("ai")
    stack.start_worker("video")
    return stack


def _open(page: Any, stack: Stack, username: str) -> None:
    page.goto(f"{stack.url}/demo/dashboard/?lang=en")
    page.fill("#login input[name=username]", username)
    page.click("#login button[type=submit]")
    page.wait_for_selector("body[data-loaded=true]", timeout=15_000)


def _sent(wire: Wire) -> list[dict[str, Any]]:
    return [json.loads(text) for _t, text in wire.frames_out]


def _states(wire: Wire) -> list[dict[str, Any]]:
    frames = [json.loads(text) for _t, text in wire.frames_in]
    return [frame for frame in frames if frame.get("type") == "state"]


@pytest.mark.timeout(600)  # a video encode, an import and a message, on a shared machine
def test_the_dashboard_shows_three_jobs_of_different_kinds_advancing_at_once(
    workers: Stack, page: tuple[Any, Wire], tmp_path: Path
) -> None:
    # given the dashboard open as staff, a 90 s lecture to encode and 10,000 students to import
    browser_page, wire = page
    clip = make_clip(tmp_path / "lecture.mp4", seconds=90)
    workbook = large_xlsx_bytes(10_000)
    _open(browser_page, workers, "alpha-staff")
    staff = Api.login(workers.url, tenant="alpha", username="alpha-staff", password=PASSWORD)
    samples = Samples()

    # when the encode starts; once it shows progress, a message to 1,000 recipients (~50 s at
    # the stack's 20 a second); once that shows progress, the import
    video = staff.video(clip)
    samples.until(browser_page, lambda rows: running(rows.get(video)), timeout=180)
    message = staff.message(1000)
    samples.until(browser_page, lambda rows: running(rows.get(message)), timeout=60)
    excel = staff.excel_import(workbook)
    samples.until(browser_page, lambda rows: running(rows.get(excel)), timeout=180)
    shot(browser_page, "dashboard-1-running.png")
    ends = {video: "READY", message: "DONE", excel: "DONE"}
    samples.until(
        browser_page,
        lambda rows: all(rows.get(t, {}).get("status") == end for t, end in ends.items()),
        timeout=300,
    )
    shot(browser_page, "dashboard-2-done.png")

    # then at some moment the three rows were running together, and each of their bars moved
    # while all three ran
    def together(rows: dict[str, dict[str, Any]]) -> bool:
        return all(running(rows.get(topic)) for topic in ends)

    assert any(together(rows) for rows in samples.rows)
    for topic in ends:
        assert len(set(samples.percents(topic, together))) >= 2, topic
    last = samples.rows[-1]
    assert (last[message]["kind"], last[excel]["kind"]) == ("messaging.send", "excel_import")

    # and one socket carried all of it: two feed subscriptions, no topic subscribed, no polling
    assert len(wire.sockets) == 1
    assert browser_page.evaluate("document.body.dataset.sockets") == "1"
    subscribes = [f["topic"] for f in _sent(wire) if f.get("type") == "subscribe"]
    assert sorted(subscribes) == ["jobs", "videos"]
    assert [url for _t, _m, url in wire.requests if "/progress/" in url] == []

    # and per item the states came in (epoch, seq) order, each ending in its terminal state
    by_item: dict[str, list[dict[str, Any]]] = {}
    for state in _states(wire):
        by_item.setdefault(state["topic"], []).append(state)
    for topic, end in ends.items():
        positions = [(s["epoch"], s["seq"]) for s in by_item[topic]]
        assert positions == sorted(set(positions)), topic
        assert by_item[topic][-1]["status"] == end


def test_a_teacher_sees_only_its_own_items_each_watched_on_its_own_topic(
    workers: Stack, page: tuple[Any, Wire]
) -> None:
    # given a staff member's message under way, and the teacher's dashboard open
    staff = Api.login(workers.url, tenant="alpha", username="alpha-staff", password=PASSWORD)
    staff_job = staff.message(200)
    browser_page, wire = page
    _open(browser_page, workers, "alpha-teacher")

    # when the teacher sends a message from the page and it runs to the end
    browser_page.fill("#quick-job input[name=recipients]", "50")
    with browser_page.expect_response(lambda r: r.url.endswith("/api/v1/jobs/")) as answer:
        browser_page.click("#quick-job button[type=submit]")
    own = str(answer.value.json()["topic"])
    samples = Samples()
    samples.until(browser_page, lambda rows: rows.get(own, {}).get("status") == "DONE", timeout=120)
    shot(browser_page, "dashboard-3-teacher.png")

    # then the page lists the teacher's job only, in the per-item view
    assert browser_page.evaluate("document.body.dataset.mode") == "watch"
    assert all(staff_job not in rows for rows in samples.rows)
    assert {topic for rows in samples.rows for topic in rows} == {own}

    # and it watched that job on its own topic, never a feed, on one socket
    subscribes = [f["topic"] for f in _sent(wire) if f.get("type") == "subscribe"]
    assert set(subscribes) == {own}
    assert len(wire.sockets) == 1
    assert [s["status"] for s in _states(wire) if s["topic"] == own][-1] == "DONE"
