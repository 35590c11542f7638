"""!expect and !wait: the matcher, the window it searches, and their parsing."""

import threading

import pytest

from chatsh.commands import COMMANDS, CommandInput, InputError, parse_input
from chatsh.expect import Expectation, ExpectWindow, parse_expectation, parse_seconds


@pytest.mark.parametrize("text, line, met", [
    ("From echobot: hi", "From echobot: hi there", True),
    ("From echobot: hi", "From echobot: h", False),
    ("/^There are \\d+ online users:$/", "There are 12 online users:", True),
    ("/^There are \\d+ online users:$/", "There are many online users:", False),
    ("/a.c/", "xabcx", True),
    ("/", "a/b", True),
    ("//", "anything", True),
    ("echo", "ECHO", False),
])
def test_matching(text, line, met):
    assert parse_expectation(text).matches(line) is met


@pytest.mark.parametrize("text, reason", [
    ("", "needs the text"), ("   ", "needs the text"), ("/(/", "not a regular expression"),
])
def test_bad_expectations(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_expectation(text)


@pytest.mark.parametrize("text, seconds", [("0", 0.0), ("1.5", 1.5), (" 2 ", 2.0)])
def test_wait_seconds(text, seconds):
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1", "inf", "nan"])
def test_bad_wait_seconds(text):
    with pytest.raises(ValueError, match="!wait needs a number of seconds"):
        parse_seconds(text)


def test_commands_parse_their_arguments():
    assert parse_input("!expect From bob: hi") == CommandInput(
        COMMANDS["expect"], Expectation("From bob: hi"))
    assert parse_input("!wait 0.5") == CommandInput(COMMANDS["wait"], 0.5)
    wrong = parse_input("!wait later")
    assert isinstance(wrong, InputError) and "!wait needs a number" in wrong.message
    assert isinstance(parse_input("!expect"), InputError)
    assert COMMANDS["expect"].scripts_only and COMMANDS["wait"].scripts_only
    assert not COMMANDS["who"].scripts_only


def line(text: str) -> list[tuple[str, str]]:
    return [("class:system", text[:3]), ("", text[3:])]


def never() -> threading.Event:
    return threading.Event()


def test_window_finds_earlier_lines_and_starts_after_the_match():
    window = ExpectWindow()
    for text in ("one", "two", "three", "two again"):
        window.add(line(text))
    assert window.wait_for(Expectation("two"), 0, never()) == "two"
    assert window.last(5) == ["three", "two again"]
    assert window.wait_for(Expectation("two"), 0, never()) == "two again"
    assert window.wait_for(Expectation("two"), 0, never()) is None


def test_window_waits_for_a_line_from_another_thread():
    window = ExpectWindow()
    added = threading.Event()

    def later():
        added.wait(5)
        window.add(line("noise"))
        window.add(line("From echobot: late"))

    thread = threading.Thread(target=later)
    thread.start()
    added.set()
    assert window.wait_for(Expectation("From echobot"), 10, never()) == "From echobot: late"
    thread.join()


def test_window_gives_up_when_told():
    window = ExpectWindow()
    give_up = threading.Event()
    threading.Timer(0.05, lambda: (give_up.set(), window.wake())).start()
    assert window.wait_for(Expectation("never"), 30, give_up) is None


def test_window_keeps_only_its_size_and_still_matches_the_newest():
    window = ExpectWindow(size=3)
    for number in range(10):
        window.add(line(f"line {number}"))
    assert window.last(10) == ["line 7", "line 8", "line 9"]
    assert window.wait_for(Expectation("line 1"), 0, never()) is None
    assert window.wait_for(Expectation("line 9"), 0, never()) == "line 9"
