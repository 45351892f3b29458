"""The demo's sample workbook: an .xlsx the importer reads, with a few rows that fail."""

from __future__ import annotations

from django.test import Client

from domains.jobs.uploads import XLSX_CONTENT_TYPE
from domains.students.rows import validate_rows
from domains.students.xlsx import read_students_xlsx
from project.demo import SAMPLE_ROWS


def test_the_sample_workbook_is_served_and_reads_with_four_bad_rows(client: Client) -> None:
    # given the demo's sample workbook
    # when it is downloaded
    response = client.get("/demo/sample-students.xlsx")

    # then it is served as .xlsx and reads with exactly its four bad rows
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX_CONTENT_TYPE
    assert "sample-students.xlsx" in response["Content-Disposition"]
    sheet = read_students_xlsx(response.content)
    assert len(sheet.rows) == SAMPLE_ROWS
    validated = validate_rows(sheet.rows)
    assert [f.row_number for f in validated.failures] == [19, 66, 130, 203]
    assert len(validated.rows) == SAMPLE_ROWS - 4
