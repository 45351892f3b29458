"""Building .xlsx files for tests: real workbooks written by openpyxl, in memory."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence

from openpyxl import Workbook

HEADER = ("이름", "학부모 전화번호", "전화번호", "학교", "학년", "성별", "메모")


def xlsx_bytes(
    rows: Iterable[Sequence[object]],
    *,
    header: Sequence[object] | None = HEADER,
    merge: Sequence[str] = (),
    before: Sequence[Sequence[object]] = (),
) -> bytes:
    """A workbook whose first sheet holds ``before`` rows, ``header`` and ``rows``."""
    workbook = Workbook()
    sheet = workbook.active
    for row in before:
        sheet.append(list(row))
    if header is not None:
        sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    for ref in merge:
        sheet.merge_cells(ref)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def large_xlsx_bytes(count: int, *, header: Sequence[object] = HEADER) -> bytes:
    """``count`` valid student rows, written in write-only mode (fast for 20,000 rows)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(list(header))
    for i in range(count):
        sheet.append([f"학생{i:05d}", 1090000000 + i, None, "대치중", 2, "남", None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def truncated(data: bytes) -> bytes:
    """The first half of a valid file: starts like a zip, is not one."""
    return data[: len(data) // 2]


def with_damaged_sheet(data: bytes) -> bytes:
    """A complete zip whose worksheet XML is cut off mid-element."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = content[: len(content) // 2]
            target.writestr(info, content)
    return buffer.getvalue()
