"""Folding user text before it becomes a key (domains/common/text.py; audit F13)."""

from __future__ import annotations

import pytest

from domains.common.text import clean_number, clean_text, fold_digits, strip_invisible


@pytest.mark.parametrize(
    "zero",
    [
        0x0660,  # Arabic-Indic
        0x06F0,  # Extended Arabic-Indic (Persian)
        0x0966,  # Devanagari
        0x09E6,  # Bengali
        0xFF10,  # fullwidth
        0x1D7CE,  # mathematical bold
    ],
)
def test_F13_digits_of_every_script_fold_to_ascii(zero: int) -> None:
    # given
    digits = "".join(chr(zero + value) for value in range(10))

    # when
    folded = clean_number(digits)

    # then
    assert folded == "0123456789"


@pytest.mark.parametrize(
    "invisible",
    ["\u200b", "\u200c", "\u200d", "\ufeff", "\u200e", "\u200f", "\u202a", "\u2066", "\u00ad"],
)
def test_F13_format_characters_are_stripped(invisible: str) -> None:
    # given a name with an invisible format character around and inside it (the parameters)
    # when
    cleaned = clean_text(f"{invisible}홍{invisible}길동{invisible}")

    # then
    assert cleaned == "홍길동"


@pytest.mark.parametrize("space", ["\u00a0", "\u2007", "\u202f", "\u3000", "\u2028", "\u2029"])
def test_space_like_separators_become_ascii_spaces(space: str) -> None:
    # given a name split by a space-like separator (the parameters)
    # when
    cleaned = strip_invisible(f"Kim{space}Minsu")

    # then
    assert cleaned == "Kim Minsu"


def test_tabs_and_newlines_are_kept_for_multi_line_text() -> None:
    # given multi-line text with a tab and a zero-width space
    # when
    cleaned = strip_invisible("line one\u200b\nline\ttwo")

    # then
    assert cleaned == "line one\nline\ttwo"


def test_decomposed_hangul_is_composed() -> None:
    # given 홍 as three jamo (macOS file names and some exports)
    decomposed = "\u1112\u1169\u11bc길동"

    # when
    cleaned = clean_text(decomposed)

    # then
    assert cleaned == "홍길동"


def test_other_letters_and_ascii_are_left_alone() -> None:
    # given text in other scripts, ASCII, and Arabic-Indic digits
    # when / then
    assert fold_digits("abc-\u0661\u0662") == "abc-12"
    assert clean_text("  Ünïcödé 名前  ") == "Ünïcödé 名前"
    assert clean_number("010-1234-5678") == "010-1234-5678"


def test_the_plain_text_shortcut_agrees_with_the_character_pass() -> None:
    # given every character the shortcut lets through unexamined: ASCII, Hangul syllables and
    # compatibility jamo, CJK ideographs (the characters Korean spreadsheets are written in)
    ranges = [(0x00, 0x7F), (0x3131, 0x318E), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3)]
    plain = "".join(chr(c) for low, high in ranges for c in range(low, high + 1))

    # when the shortcut is defeated by one zero-width space, the character pass runs over all
    examined = strip_invisible(plain + "\u200b")

    # then the character pass changes nothing but that one character, so skipping it is exact;
    # and no shortcut character is a non-ASCII digit
    assert examined == plain
    assert strip_invisible(plain) == plain
    assert fold_digits(plain + "\u0661") == plain + "1"
