"""The demo page's Excel import: upload, watch over the socket, counts, failures download."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from domains.jobs.models import Job
from tests.support.e2e import Stack, Wire, shot, state_frames, wait_done

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GOOD_ROWS = 40
BAD_ROWS = {7: ("", "010-3000-0007"), 21: ("한지민", "02-123")}  # no name; not a mobile number


def _workbook(path: Path) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["이름", "학부모 전화번호", "학교", "학년"])
    for i in range(GOOD_ROWS + len(BAD_ROWS)):
        name, phone = BAD_ROWS.get(i, (f"학생{i:03d}", f"010-3000-{i:04d}"))
        sheet.append([name or None, phone, "대치중", 2])
    workbook.save(path)
    return path


def _submit(page: Any, path: Path) -> Any:
    page.set_input_files("#start input[name=file]", str(path))
    with page.expect_response(lambda r: r.url.endswith("/api/v1/jobs/")) as answer:
        page.click("#start button[type=submit]")
    return answer.value


def test_an_excel_import_refuses_a_bad_file_then_runs_to_done_with_counts_and_failures(
    ai_worker: Stack, page: tuple[Any, Wire], tmp_path: Path
) -> None:
    # given the demo page in Korean, logged in, with the Excel import chosen
    browser_page, wire = page
    browser_page.goto(f"{ai_worker.url}/demo/")  # Korean, the users' language
    browser_page.click("#login button[type=submit]")
    browser_page.wait_for_selector("#job-panel:not([hidden])", timeout=10_000)
    browser_page.select_option("#start select[name=job_type]", "excel_import")

    # when a CSV named .xlsx is submitted
    fake = tmp_path / "students.xlsx"
    fake.write_text("이름,학부모 전화번호\n김민준,010-1234-5678\n", encoding="utf-8")
    answer = _submit(browser_page, fake)

    # then the API refuses it with a clear message under the file input, and nothing starts
    assert answer.status == 400
    assert json.loads(answer.text())["fields"]["file"]
    error = str(browser_page.text_content('#start .field-error[data-field="file"]'))
    assert error.startswith("파일 (.xlsx): ")
    assert "엑셀(.xlsx) 파일이 아닙니다" in error
    assert browser_page.is_hidden("#watch-panel")
    assert Job.objects.count() == 0

    # when a real workbook with two bad rows is submitted, in English this time
    browser_page.click("#lang")
    assert _submit(browser_page, _workbook(tmp_path / "s.xlsx")).status == 202
    assert browser_page.text_content('#start .field-error[data-field="file"]') == ""
    topic = str(browser_page.text_content("#topic"))
    wait_done(browser_page, timeout_s=30)

    # then it runs to DONE over the socket, with the counts, the failed rows and their download
    assert browser_page.text_content("#status") == "DONE"
    counts = {
        key: int(str(browser_page.text_content(f'#counts [data-count="{key}"]')))
        for key in ("created", "restored", "updated", "unchanged", "failed")
    }
    expected = {"created": GOOD_ROWS, "restored": 0, "updated": 0, "unchanged": 0, "failed": 2}
    assert counts == expected
    failed = browser_page.locator("#failed-rows tbody tr")
    assert failed.count() == 2
    assert "not a valid mobile number" in str(failed.nth(1).text_content())
    # Watched over the socket, without polling.
    states = state_frames(wire, topic)
    assert states
    assert states[-1]["status"] == "DONE"
    assert states[-1]["job_type"] == "excel_import"
    assert not [url for _t, _m, url in wire.requests if "/progress/" in url]
    shot(browser_page, "demo-4-excel.png")

    # The failures workbook, fetched with the bearer token and saved from a blob URL.
    assert browser_page.is_visible("#failures-download")
    with browser_page.expect_download(timeout=10_000) as download_info:
        browser_page.click("#failures-download")
    download = download_info.value
    assert download.suggested_filename.startswith("failures-")
    sheet = load_workbook(io.BytesIO(Path(download.path()).read_bytes())).active
    assert sheet is not None
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == [9, 23]
