"""Reading the student workbook and writing the failed rows back out. Pure: no Django.

Reading uses openpyxl's read-only mode (constant memory, rows streamed) with
``data_only=False`` so formulas are seen as formulas (with ``data_only=True`` a formula cell
yields its cached result, which is empty in files written by many tools). Every refusal is a
:class:`WorkbookRejected` carrying a message code with Korean and English text, raised before
any database work.

Merged cells: read-only worksheets do not expose ``merged_cells``, and loading the sheet in
normal mode costs ~50x the file size in memory. The ``<mergeCell ref=…>`` elements sit at the
end of the sheet's XML part, so one streamed regex pass over that part (decompressed in 1 MB
pieces) finds them at a fraction of the parse cost. Only merges at or below the header row are
refused: a merged title above the header is common and harmless.

Workbook bombs (audit F7): a 600 KB upload can declare 200 MB of XML, and openpyxl's read-only
mode still loads the whole shared-strings table into a list. So before openpyxl sees the file,
the zip's central directory must declare at most :class:`WorkbookLimits` bytes (in all and per
part) and a streamed count of the shared-strings part must stay under its cap. ``zipfile``
never inflates past a member's declared size (a lie fails its CRC check: a damaged file), so
the declared sizes bound what any later reader decompresses.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any
from xml.etree.ElementTree import ParseError

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from domains.students import messages as m
from domains.students.messages import Message
from domains.students.rows import FIELD_LABELS, CellError, HeaderMap, RawRow, map_header

DEFAULT_MAX_ROWS = 20_000
# A title or a note may sit above the header row.
HEADER_SCAN_ROWS = 10
# Files "used" down to row 1,048,576 (formatting only) are read in constant memory, but not
# forever: past this many physical rows per allowed data row the file is refused.
PHYSICAL_ROWS_PER_DATA_ROW = 5

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0"  # .xls and password-protected .xlsx
_ZIP_MAGIC = b"PK\x03\x04"
_MERGE_REF = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
_MERGE_SCAN_BLOCK = 1024 * 1024
_MERGE_SCAN_OVERLAP = 256

Source = bytes | IO[bytes]

_MIB = 1024 * 1024
# Measured on 20,000-row workbooks with all 11 known columns filled (unique 3-syllable names,
# text phones, 300 schools, a memo on every row), stored as Excel stores them (a shared-strings
# table) and as openpyxl writes them (inline strings, one big sheet part):
#   20-character memos:   2.3 MB zipped, 11.6 MB uncompressed (sheet 7.9 MB, shared strings
#                         3.7 MB, 100,326 distinct of 220,011 strings); inline: 13.8 MB
#   100-character memos:  5.5 MB zipped, 16.4 MB uncompressed (shared strings 8.5 MB);
#                         inline: 18.6 MB, all of it in the sheet part
# Reading the largest of them costs ~4.8 CPU-s and ~90 MB of peak RSS; the caps keep a bomb
# within about that, where the old 200 MB cap let a 600 KB file cost ~60 CPU-s and ~1 GB.
DEFAULT_MAX_UNCOMPRESSED_BYTES = 40 * _MIB  # 2.1x the largest measured file
DEFAULT_MAX_PART_BYTES = 32 * _MIB  # 1.7x the largest measured part
# Every cell of 11 columns x 20,000 rows distinct would be 220,000 (measured: ~100,000).
DEFAULT_MAX_SHARED_STRINGS = 250_000

_SHARED_STRINGS_TYPE = re.compile(
    rb'<(?:\w+:)?Override\b[^>]*?PartName="/?([^"]+)"[^>]*?ContentType="[^"]*'
    rb'sharedStrings\+xml"'
)
_SHARED_STRINGS_DEFAULT = "xl/sharedStrings.xml"
# One ``<si>`` opens each shared string; a namespace prefix is allowed, as openpyxl allows it.
_STRING_ITEM = re.compile(rb"<(?:\w{1,32}:)?si[\s>/]")
_STRING_ITEM_MAX = 40  # bytes of the longest match: the overlap kept between blocks
_COUNT_BLOCK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class WorkbookLimits:
    """What a workbook may cost to read, checked before it is parsed (settings in Django)."""

    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES
    max_shared_strings: int = DEFAULT_MAX_SHARED_STRINGS


class WorkbookRejected(Exception):
    """The whole file is refused; ``message`` says why in Korean and English."""

    def __init__(self, message: Message) -> None:
        super().__init__(f"{message.code}: {message.en}")
        self.message = message

    @property
    def code(self) -> str:
        return self.message.code


@dataclass(frozen=True, slots=True)
class ParsedSheet:
    header_row: int
    columns: tuple[tuple[str, str], ...]  # (field, header text) in column order
    rows: list[RawRow]


def read_students_xlsx(
    source: Source, *, max_rows: int = DEFAULT_MAX_ROWS, limits: WorkbookLimits | None = None
) -> ParsedSheet:
    """The first worksheet's header and data rows (blank rows skipped, Excel row numbers kept).

    The zip's declared sizes and its shared-string count are checked against ``limits`` first:
    a workbook bomb is refused before openpyxl reads a byte of it.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    _sniff(stream)
    merges = _merged_ranges(stream, limits or WorkbookLimits())
    return _parse_workbook(stream, merges, max_rows=max_rows)


def _parse_workbook(
    stream: IO[bytes], merges: list[tuple[int, int, str]], *, max_rows: int
) -> ParsedSheet:
    """openpyxl's part: only reached by a file whose size and strings are within the limits."""
    stream.seek(0)
    try:
        workbook = load_workbook(stream, read_only=True, data_only=False)
    except (
        zipfile.BadZipFile,
        InvalidFileException,
        KeyError,
        ValueError,
        TypeError,
        ParseError,
        zlib.error,
        EOFError,
        OSError,
    ) as exc:
        raise WorkbookRejected(m.CORRUPT) from exc
    try:
        if not workbook.worksheets:
            raise WorkbookRejected(m.EMPTY_SHEET)
        sheet = workbook.worksheets[0]
        # The stored dimension is often wrong (openpyxl docs); rows are read as they are.
        sheet.reset_dimensions()
        return _read_rows(sheet, merges, max_rows=max_rows)
    except (zipfile.BadZipFile, ParseError, zlib.error, EOFError) as exc:
        raise WorkbookRejected(m.CORRUPT) from exc
    finally:
        workbook.close()


def _sniff(stream: IO[bytes]) -> None:
    stream.seek(0)
    magic = stream.read(4)
    stream.seek(0)
    if magic == _OLE2_MAGIC:
        raise WorkbookRejected(m.LEGACY_XLS)
    if magic != _ZIP_MAGIC:
        raise WorkbookRejected(m.NOT_XLSX)


def _merged_ranges(stream: IO[bytes], limits: WorkbookLimits) -> list[tuple[int, int, str]]:
    """(first row, last row, "A1:B2") of every merge in the first worksheet, once the archive
    is known to be within ``limits``."""
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WorkbookRejected(m.CORRUPT) from exc
    with archive:
        infos = archive.infolist()
        _check_sizes(infos, limits)
        names = {info.filename for info in infos}
        if "xl/workbook.xml" not in names:
            raise WorkbookRejected(m.NOT_XLSX)
        try:
            _check_shared_strings(archive, names, limits)
            part = _sheet_part(archive)
            if part is None or part not in names:
                return []
            return _scan_merges(archive, part)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise WorkbookRejected(m.CORRUPT) from exc


def _check_sizes(infos: list[zipfile.ZipInfo], limits: WorkbookLimits) -> None:
    """The central directory's declared sizes, before anything is inflated."""
    total = sum(info.file_size for info in infos)
    largest = max((info.file_size for info in infos), default=0)
    if total > limits.max_uncompressed_bytes:
        raise WorkbookRejected(m.TOO_LARGE.format(limit_mb=limits.max_uncompressed_bytes // _MIB))
    if largest > limits.max_part_bytes:
        raise WorkbookRejected(m.TOO_LARGE.format(limit_mb=limits.max_part_bytes // _MIB))


def _check_shared_strings(
    archive: zipfile.ZipFile, names: set[str], limits: WorkbookLimits
) -> None:
    """Count the ``<si>`` items of the shared-strings part as it streams by, in 1 MB blocks;
    stop at the first one past the cap. The part is at most ``max_part_bytes`` by now."""
    part = _shared_strings_part(archive, names)
    if part is None:
        return
    count = 0
    carry = b""
    with archive.open(part) as xml:
        while block := xml.read(_COUNT_BLOCK):
            window = carry + block
            safe = max(len(window) - _STRING_ITEM_MAX, 0)
            # Matches are counted where they start: one that starts in the carry is counted
            # with the next block, whole.
            count += sum(1 for item in _STRING_ITEM.finditer(window) if item.start() < safe)
            if count > limits.max_shared_strings:
                break
            carry = window[safe:]
        else:
            count += sum(1 for _ in _STRING_ITEM.finditer(carry))
    if count > limits.max_shared_strings:
        raise WorkbookRejected(m.TOO_MANY_STRINGS.format(limit=limits.max_shared_strings))


def _shared_strings_part(archive: zipfile.ZipFile, names: set[str]) -> str | None:
    """The part openpyxl reads the shared strings from: the content types name it."""
    if "[Content_Types].xml" in names:
        match = _SHARED_STRINGS_TYPE.search(archive.read("[Content_Types].xml"))
        if match is not None:
            part = match.group(1).decode()
            return part if part in names else None
    return _SHARED_STRINGS_DEFAULT if _SHARED_STRINGS_DEFAULT in names else None


_SHEET_ENTRY = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\b(?:\w+:)?id="([^"]+)"')
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")
_ATTRIBUTE = re.compile(rb'\b(Id|Target)="([^"]*)"')


def _sheet_part(archive: zipfile.ZipFile) -> str | None:
    """The first worksheet's part: <sheet r:id> entries of xl/workbook.xml in order, resolved
    through xl/_rels/workbook.xml.rels, chartsheets skipped (openpyxl's ``worksheets[0]``)."""
    try:
        workbook = archive.read("xl/workbook.xml")
        rels = archive.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return None
    targets: dict[bytes, str] = {}
    for element in _RELATIONSHIP.findall(rels):
        attributes = dict(_ATTRIBUTE.findall(element))
        target = attributes.get(b"Target", b"").decode()
        targets[attributes.get(b"Id", b"")] = (
            target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        )
    for entry in _SHEET_ENTRY.finditer(workbook):
        part = targets.get(entry.group(1), "")
        if "/worksheets/" in part:
            return part
    return None


def _scan_merges(archive: zipfile.ZipFile, part: str) -> list[tuple[int, int, str]]:
    found: dict[str, tuple[int, int, str]] = {}
    tail = b""
    with archive.open(part) as xml:
        while block := xml.read(_MERGE_SCAN_BLOCK):
            window = tail + block
            for match in _MERGE_REF.finditer(window):
                first_col, first_row, last_col, last_row = match.groups()
                ref = (first_col + first_row).decode()
                if last_col:
                    ref += ":" + (last_col + last_row).decode()
                found[ref] = (int(first_row), int(last_row or first_row), ref)
            tail = window[-_MERGE_SCAN_OVERLAP:]
    return sorted(found.values())


def _cell_ref(column_index: int, row_number: int) -> str:
    return f"{get_column_letter(column_index + 1)}{row_number}"


def _read_rows(sheet: Any, merges: list[tuple[int, int, str]], *, max_rows: int) -> ParsedSheet:
    header: HeaderMap | None = None
    header_row = 0
    best: HeaderMap | None = None
    seen_content = False
    rows: list[RawRow] = []
    physical_limit = max_rows * PHYSICAL_ROWS_PER_DATA_ROW + HEADER_SCAN_ROWS
    for row_number, cells in enumerate(sheet.iter_rows(), start=1):
        if header is None:
            if row_number > HEADER_SCAN_ROWS:
                break
            values = [cell.value for cell in cells]
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            seen_content = True
            candidate = map_header(values)
            if candidate.duplicate:
                first, second = candidate.duplicate
                raise WorkbookRejected(m.DUPLICATE_COLUMN.format(first=first, second=second))
            if candidate.ok:
                header, header_row = candidate, row_number
                _refuse_formulas(cells, header.columns.values(), row_number)
                _refuse_merges(merges, header_row)
            elif best is None or len(candidate.columns) > len(best.columns):
                best = candidate
            continue
        if row_number > physical_limit:
            raise WorkbookRejected(m.TOO_MANY_ROWS.format(limit=max_rows))
        raw = _raw_row(cells, header, row_number)
        if raw.is_blank():
            continue
        if len(rows) >= max_rows:
            raise WorkbookRejected(m.TOO_MANY_ROWS.format(limit=max_rows))
        rows.append(raw)
    if header is None:
        if not seen_content:
            raise WorkbookRejected(m.EMPTY_SHEET)
        raise WorkbookRejected((best or map_header([])).missing_message())
    if not rows:
        raise WorkbookRejected(m.NO_DATA_ROWS)
    columns = tuple(
        (name, header.labels[name]) for name, _ in sorted(header.columns.items(), key=_by_index)
    )
    return ParsedSheet(header_row=header_row, columns=columns, rows=rows)


def _by_index(item: tuple[str, int]) -> int:
    return item[1]


def _raw_row(cells: tuple[Any, ...], header: HeaderMap, row_number: int) -> RawRow:
    values: dict[str, object] = {}
    width = len(cells)
    for name, index in header.columns.items():
        if index >= width:
            values[name] = None
            continue
        cell = cells[index]
        data_type = getattr(cell, "data_type", None)
        if data_type == "f":
            raise WorkbookRejected(m.FORMULA.format(cell=_cell_ref(index, row_number)))
        values[name] = CellError(str(cell.value)) if data_type == "e" else cell.value
    return RawRow(row_number=row_number, values=values)


def _refuse_formulas(cells: tuple[Any, ...], indexes: Iterable[int], row_number: int) -> None:
    for index in indexes:
        if index < len(cells) and getattr(cells[index], "data_type", None) == "f":
            raise WorkbookRejected(m.FORMULA.format(cell=_cell_ref(index, row_number)))


def _refuse_merges(merges: list[tuple[int, int, str]], header_row: int) -> None:
    refs = [ref for _, last_row, ref in merges if last_row >= header_row]
    if refs:
        shown = ", ".join(refs[:3]) + (" …" if len(refs) > 3 else "")
        raise WorkbookRejected(m.MERGED_CELLS.format(ranges=shown))


# --- The failed rows, as a workbook the user can fix and upload again ------------------------
ROW_HEADER = "행 번호"
REASON_HEADER = "사유"


def failures_workbook(result: Mapping[str, Any]) -> bytes:
    """An .xlsx of the failed rows of an import result (``ImportResult.as_dict()``).

    Columns: Excel row number, the file's own columns with the original values, the reason.
    Neither extra column is an import alias, so the fixed file can be uploaded as it is.
    """
    columns: list[str] = list(result.get("columns") or [FIELD_LABELS["name"][0]])
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("실패한 행")
    sheet.append([ROW_HEADER, *columns, REASON_HEADER])
    for failure in result.get("failed_rows", []):
        values = failure.get("values") or [failure.get("name")] + [None] * (len(columns) - 1)
        sheet.append(
            [_text_cell(sheet, v) for v in (failure["row"], *values, failure.get("reason"))]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(sheet: Any, value: object) -> object:
    if not isinstance(value, str):
        return value
    # openpyxl turns "=…" into a formula and "#N/A" into an error: user text must stay text.
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell
