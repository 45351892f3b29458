"""Building .xlsx files for tests: real workbooks written by openpyxl, in memory."""

from __future__ import annotations

import functools
import io
import random
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any
from xml.sax.saxutils import escape

import pytest
from openpyxl import Workbook

from domains.students import xlsx

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


# --- Workbooks as Excel stores them, and bombs (audit F7) -----------------------------------
FULL_HEADER = (
    "이름",
    "학부모 전화번호",
    "학생 전화번호",
    "학교",
    "학교 구분",
    "학년",
    "성별",
    "메모",
    "반",
    "계열",
    "학부모 이름",
)
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'  # noqa: E501
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'  # noqa: E501
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'  # noqa: E501
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'  # noqa: E501
    "</Types>"
)  # fmt: skip
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'  # noqa: E501
    "</Relationships>"
)  # fmt: skip
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'  # noqa: E501
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'  # noqa: E501
    "</Relationships>"
)  # fmt: skip
_SHEET_OPEN = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_CLOSE = "</sheetData></worksheet>"
_SST_OPEN = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)


def _column(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def shared_strings_xlsx_bytes(rows: Iterable[Sequence[str]], *, header: Sequence[str]) -> bytes:
    """A workbook laid out as Excel saves it: every text cell an index into sharedStrings.xml
    (openpyxl writes inline strings instead, which never exercise that table)."""
    table: dict[str, int] = {}
    cells: list[str] = [_SHEET_OPEN]
    for number, row in enumerate([header, *rows], start=1):
        cells.append(f'<row r="{number}">')
        for index, value in enumerate(row):
            position = table.setdefault(escape(value), len(table))
            cells.append(f'<c r="{_column(index)}{number}" t="s"><v>{position}</v></c>')
        cells.append("</row>")
    cells.append(_SHEET_CLOSE)
    strings = "".join(f"<si><t>{text}</t></si>" for text in table)
    return _package("".join(cells).encode(), (_SST_OPEN + strings + "</sst>").encode())


def realistic_students(count: int, *, memo_length: int = 100) -> list[tuple[str, ...]]:
    """``count`` students with every known column filled and mostly distinct text: names,
    text phones, one of 300 schools, a ``memo_length``-syllable memo on every row."""
    rnd = random.Random(20_000)
    syllables = [chr(0xAC00 + i) for i in range(0, 11172, 7)]

    def word(length: int) -> str:
        return "".join(rnd.choices(syllables, k=length))

    return [
        (
            word(3),
            f"010-{rnd.randrange(10_000):04d}-{i % 10_000:04d}",
            f"010-{rnd.randrange(10_000):04d}-{rnd.randrange(10_000):04d}",
            f"서울{rnd.randrange(300)}고등학교",
            "고",
            f"{rnd.randrange(1, 4)}학년",
            rnd.choice("남여"),
            word(memo_length),
            f"{rnd.randrange(1, 15)}반",
            rnd.choice(["이과", "문과"]),
            word(3),
        )
        for i in range(count)
    ]


@functools.cache
def bomb_xlsx_bytes(*, strings_mb: int = 100, sheet_mb: int = 100) -> bytes:
    """The probe of audit F7: a valid header and rows, then ``strings_mb`` MB of one-letter
    shared strings and ``sheet_mb`` MB of cells; ~200 KB-600 KB zipped. Built in 1 MB pieces."""
    buffer = io.BytesIO()
    mb = 1024 * 1024
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        _write_parts(archive)
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(_SST_OPEN.encode())
            piece = b"<si><t>a</t></si>" * (mb // 17)
            for _ in range(strings_mb):
                part.write(piece)
            part.write(b"</sst>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(_SHEET_OPEN.encode())
            part.write('<row r="1"><c r="A1" t="inlineStr"><is><t>이름</t></is></c>'.encode())
            part.write('<c r="B1" t="inlineStr"><is><t>학부모 전화번호</t></is></c></row>'.encode())
            piece = b'<row><c t="s"><v>0</v></c><c t="s"><v>0</v></c></row>' * (mb // 54)
            for _ in range(sheet_mb):
                part.write(piece)
            part.write(_SHEET_CLOSE.encode())
    return buffer.getvalue()


def _write_parts(archive: zipfile.ZipFile) -> None:
    archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
    archive.writestr("_rels/.rels", _ROOT_RELS)
    archive.writestr("xl/workbook.xml", _WORKBOOK)
    archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)


def _package(sheet: bytes, shared_strings: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        _write_parts(archive)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        archive.writestr("xl/sharedStrings.xml", shared_strings)
    return buffer.getvalue()


@functools.cache
def realistic_xlsx_bytes(count: int = 20_000) -> bytes:
    """``realistic_students(count)`` in Excel's layout: 20,000 rows are ~5.5 MB zipped,
    ~16.4 MB uncompressed, ~100,000 distinct shared strings."""
    return shared_strings_xlsx_bytes(realistic_students(count), header=FULL_HEADER)


@dataclass
class ParseSpy:
    """Stands at the boundary where the importer hands a workbook to openpyxl
    (``domains.students.xlsx._parse_workbook``) and counts the files that reach it.

    ``call_through`` runs the real parse; without it the spy answers an empty sheet, for files
    whose parse cost is not what the test is about.
    """

    call_through: bool = True
    calls: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> ParseSpy:
        real = xlsx._parse_workbook

        def spy(stream: IO[bytes], merges: list[tuple[int, int, str]], *, max_rows: int) -> Any:
            self.calls += 1
            if self.call_through:
                return real(stream, merges, max_rows=max_rows)
            return xlsx.ParsedSheet(header_row=1, columns=(), rows=[])

        monkeypatch.setattr(xlsx, "_parse_workbook", spy)
        return self
