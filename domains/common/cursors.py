"""Keyset cursors for the newest-first lists (PROTOCOL.md §5, ``GET /api/v1/jobs/``).

A list is ordered by ``(created_at, id)`` descending, and a page ends at a row; the cursor names
that row's key, so the next page is "rows strictly older than this key". Unlike an offset, the
key does not move when rows are inserted at the head or removed behind it: a client paging
through a busy tenant sees every row that existed when it started, once, and no row twice.

The cursor is opaque to clients (URL-safe base64 of ``<microseconds since epoch>.<id>``) and is
checked strictly: anything that does not decode to a key is refused, never read as "page one".
Pure logic: no Django.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY = re.compile(r"(-?[0-9]{1,19})\.([0-9]{1,19})")
# The URL-safe base64 alphabet without padding: the decoder would otherwise skip other bytes.
_TEXT = re.compile(r"[A-Za-z0-9_-]+")
# Longer than any cursor this module writes (two 19-digit numbers in base64).
CURSOR_MAX_LENGTH = 64
# PostgreSQL's bigint: an id beyond it can never match a row, and would overflow the query.
_ID_MAX = 2**63 - 1

RowT = TypeVar("RowT")


class InvalidCursor(ValueError):
    """The text is not a cursor this server wrote."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """The key of the last row of a page: the next page starts strictly below it."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        raw = f"{micros}.{self.id}".encode("ascii")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if len(text) > CURSOR_MAX_LENGTH or _TEXT.fullmatch(text) is None:
            raise InvalidCursor(text)
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidCursor(text) from exc
        match = _KEY.fullmatch(raw)
        if match is None:
            raise InvalidCursor(text)
        row_id = int(match.group(2))
        if row_id > _ID_MAX:
            raise InvalidCursor(text)
        try:
            created_at = _EPOCH + timedelta(microseconds=int(match.group(1)))
        except OverflowError as exc:
            raise InvalidCursor(text) from exc
        return cls(created_at=created_at, id=row_id)


@dataclass(frozen=True, slots=True)
class Page(Generic[RowT]):
    """One page of a list and the cursor of the next (``None`` on the last page)."""

    rows: Sequence[RowT]
    next_cursor: Cursor | None


def page_cut(rows: Sequence[RowT], *, size: int, key_of: Callable[[RowT], Cursor]) -> Page[RowT]:
    """The page out of ``size + 1`` rows fetched: the extra row only says that another page
    exists, and the next page starts below the key of this page's last row."""
    if len(rows) > size:
        return Page(rows=rows[:size], next_cursor=key_of(rows[size - 1]))
    return Page(rows=rows, next_cursor=None)
