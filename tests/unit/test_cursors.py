"""The keyset cursor of the lists: a round trip, and refusal of anything it did not write."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from domains.common.cursors import Cursor, InvalidCursor, page_cut


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor(created_at=datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC), id=42),
        Cursor(created_at=datetime(1969, 7, 20, 20, 17, tzinfo=UTC), id=1),
        Cursor(created_at=datetime(2026, 1, 1, tzinfo=UTC), id=2**63 - 1),
    ],
)
def test_a_cursor_decodes_to_the_key_it_was_made_from(cursor: Cursor) -> None:
    # given a row key
    # when it is encoded and decoded
    text = cursor.encode()

    # then the key comes back to the microsecond, from URL-safe text
    assert Cursor.decode(text) == cursor
    assert text.replace("-", "").replace("_", "").isalnum()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        b64("123"),
        b64("1.2.3"),
        b64("abc.1"),
        b64("1764549000.-1"),
        b64(f"1.{2**63}"),
        b64(f"{10**18}.1"),
        "A" * 65,
        "\x00",
    ],
)
def test_text_that_is_no_cursor_of_ours_is_refused(text: str) -> None:
    # given text that is no cursor (the parameter)
    # when text that this module did not write is decoded
    # then it is refused, never read as some position
    with pytest.raises(InvalidCursor):
        Cursor.decode(text)


def test_a_page_names_the_next_cursor_only_when_a_row_is_left() -> None:
    # given four rows fetched for pages of three, and three rows fetched
    def key(n: int) -> Cursor:
        return Cursor(created_at=datetime(2026, 1, 1, tzinfo=UTC), id=n)

    # when each is cut to a page
    more = page_cut([9, 8, 7, 6], size=3, key_of=key)
    last = page_cut([9, 8, 7], size=3, key_of=key)

    # then the first shows three and continues below its last row; the second ends the list
    assert list(more.rows) == [9, 8, 7]
    assert more.next_cursor == key(7)
    assert list(last.rows) == [9, 8, 7]
    assert last.next_cursor is None
