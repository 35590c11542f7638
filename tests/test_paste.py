"""Bracketed paste: the parser takes any chunking, long pastes become markers."""

import pytest
from prompt_toolkit.keys import Keys

from chatsh.ui.paste import INLINE_LIMIT, LinearPasteParser, Pastes


def parse(chunks: list[str]) -> list[tuple[str, str]]:
    presses = []
    parser = LinearPasteParser(presses.append)
    for chunk in chunks:
        parser.feed(chunk)
    parser.flush()
    return [(p.key, p.data) for p in presses]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 1000])
def test_a_paste_in_any_chunks_arrives_whole_with_the_keys_after_it(size):
    data = "a\x1b[200~pasted \x1b[20 text\nline two\x1b[201~bc"
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    presses = parse(chunks)
    assert (Keys.BracketedPaste, "pasted \x1b[20 text\nline two") in presses
    assert [data for key, data in presses if key != Keys.BracketedPaste] == ["a", "b", "c"]


def test_two_pastes_in_one_chunk():
    presses = parse(["\x1b[200~one\x1b[201~\x1b[200~two\x1b[201~"])
    assert presses == [(Keys.BracketedPaste, "one"), (Keys.BracketedPaste, "two")]


def test_short_pastes_go_in_as_they_are_long_ones_as_markers():
    pastes = Pastes()
    assert pastes.marker("short") == "short"
    long = "x" * INLINE_LIMIT + "\ny"
    marker = pastes.marker(long)
    assert marker == f"[paste #1: {len(long)} characters, 2 lines]"
    assert pastes.expand(f"@bob {marker}!") == f"@bob {long}!"
    assert pastes.expand(f"@bob {marker}") == f"@bob {marker}"  # nothing held any more


def test_a_marker_counts_the_lines_the_question_counts():
    """Six lines pasted with their last newline showed '7 lines' and then asked 'Send
    these 6 lines to bob?'."""
    pastes = Pastes()
    six = "".join(f"{'x' * INLINE_LIMIT}\n" for _ in range(6))
    assert pastes.marker(six) == f"[paste #1: {len(six)} characters, 6 lines]"
    assert pastes.marker("x" * INLINE_LIMIT + "\n") == f"[paste #2: {INLINE_LIMIT + 1} characters]"


def test_unknown_sequences_are_dropped_outside_a_paste_only():
    presses = parse(["a\x1b[99;9~b\x1b[5;2~\x1b[200~in \x1b[99;9~ paste\x1b[201~\x1b[1;5Pc"])
    assert (Keys.BracketedPaste, "in \x1b[99;9~ paste") in presses
    assert [key for key, _ in presses if key != Keys.BracketedPaste] == [
        "a", "b", Keys.ShiftPageUp, Keys.ControlF1, "c"]


def test_the_answer_to_a_cursor_position_request_reaches_prompt_toolkit():
    """Dropped as an unknown sequence, prompt_toolkit never learns the screen's height:
    it warns that the terminal does not answer and draws no bottom toolbar."""
    assert parse(["x\x1b[12;1Ry"]) == [("x", "x"), (Keys.CPRResponse, "\x1b[12;1R"), ("y", "y")]


def test_a_kept_marker_stays_meaningful_and_a_paste_is_expanded_once():
    pastes = Pastes()
    long = "y" * INLINE_LIMIT + " [paste #1: 5 characters]"
    marker = pastes.marker(long)
    pastes.keep(f"@bob {marker}")
    assert pastes.expand(f"@bob {marker}") == f"@bob {long}"  # the marker in it stays text
    assert pastes.expand(f"@carol {marker}") == f"@carol {long}"  # kept: expanded again


def test_a_long_line_of_the_history_comes_back_behind_a_marker_after_its_name():
    pastes = Pastes()
    long = "z" * (INLINE_LIMIT + 1)
    assert pastes.recalled("@bob hi") == "@bob hi"
    shown = pastes.recalled(f"@bob {long}")
    assert shown == f"@bob [paste #1: {len(long)} characters]"
    assert pastes.recalled(long) == f"[paste #2: {len(long)} characters]"
    assert pastes.expand(shown) == f"@bob {long}"
    assert pastes.expand(shown) == f"@bob {long}"
