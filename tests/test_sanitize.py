import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatsh.sanitize import escape_name_segments, escape_segments, sanitize, visible_escape


@pytest.mark.parametrize("raw, shown", [
    ("hello", "hello"),
    ("\x1b[2Jclear", "^[[2Jclear"),
    ("\x1b]0;title\x07", "^[]0;title^G"),
    ("\x1b]52;c;aGk=\x07", "^[]52;c;aGk=^G"),
    ("over\rwrite", "over^Mwrite"),
    ("back\x08\x08", "back^H^H"),
    ("del\x7f", "del^?"),
    ("\x00nul", "^@nul"),
    ("csi\x9b31m", "csi<9b>31m"),
    ("\x85next", "<85>next"),
    ("abc\u202eevil", "abc<U+202E>evil"),
    ("\u2066iso\u2069", "<U+2066>iso<U+2069>"),
    ("\u200e\u200f\u061c", "<U+200E><U+200F><U+061C>"),
    ("line\u2028sep\u2029par", "line sep par"),
    ("a\tb", "a       b"),
    ("new\nline", "new^Jline"),
    ("café 名前 👩‍👩‍👧 é", "café 名前 👩‍👩‍👧 é"),
    ("", ""),
])
def test_table(raw, shown):
    assert sanitize(raw) == shown


def test_escapes_are_flagged():
    assert escape_segments("a\x1bb") == [(False, "a"), (True, "^["), (False, "b")]
    assert escape_segments("plain") == [(False, "plain")]


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in (
        "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


@given(st.text())
def test_output_has_no_control_characters(text):
    assert not any(_unsafe(char) for char in sanitize(text))


@given(st.text().filter(lambda t: not any(_unsafe(c) for c in t)))
def test_safe_text_passes_unchanged(text):
    assert sanitize(text) == text


@pytest.mark.parametrize("char, shown", [
    ("\x00", "^@"), ("\x1f", "^_"), (" ", "<20>"), ("!", "<21>"), ("\x7e", "<7e>"),
    ("\x7f", "^?"), ("\x80", "<80>"), ("\x9f", "<9f>"), ("\xa0", "<U+00A0>"),
    ("\xa1", "<U+00A1>"), ("\u202e", "<U+202E>"), ("\U0001f600", "<U+1F600>"),
])
def test_visible_escape_at_every_boundary(char, shown):
    assert visible_escape(char) == shown


@pytest.mark.parametrize("raw, segments", [
    ("", []),
    ("a\tb", [(False, "a       b")]),
    ("\x1b\x1b", [(True, "^["), (True, "^[")]),
    ("a\u2028b\u2029", [(False, "a"), (False, " "), (False, "b"), (False, " ")]),
    ("x\x07", [(False, "x"), (True, "^G")]),
])
def test_segments(raw, segments):
    assert escape_segments(raw) == segments


@pytest.mark.parametrize("name, segments", [
    ("bob", [(False, "bob")]),
    ("a\u200bb", [(False, "a"), (True, "<U+200B>"), (False, "b")]),
    ("\u200b\u2060", [(True, "<U+200B>"), (True, "<U+2060>")]),
    ("é b\u00a0", [(False, "é b"), (True, "<U+00A0>")]),
    ("x\x1bé\ufeff", [(False, "x"), (True, "^["), (False, "é"), (True, "<U+FEFF>")]),
    ("名前", [(False, "名前")]),
])
def test_name_segments(name, segments):
    assert escape_name_segments(name) == segments
