"""Alerts that follow the user's attention, in a pseudo-terminal: focus reports, messages
counted, Enter on an empty line, and focus reports never typed."""

from __future__ import annotations

import time

import pytest
from conftest import CHATSH, RawClient
from terminal import Terminal, logged_in

REPORTS_ON, REPORTS_OFF = b"\x1b[?1004h", b"\x1b[?1004l"
POP_TITLE = b"\x1b[23;0t"


def focus(term: Terminal, focused: bool) -> None:
    """Focus in or out, and wait until the shell has read it: a key typed after the
    report shows on the screen only once the report before it is handled."""
    term.focus(focused)
    term.type("#")
    term.wait_for(lambda _: term.input_line().endswith("#"), what="the key after the report")
    term.type("\x15")
    term.wait_for(lambda _: not term.input_line().endswith("#"), what="the line cleared")


def bells(term: Terminal) -> int:
    return term.raw.count(b"\x07")


def test_focus_reports_are_asked_for_while_the_prompt_runs(server, term_factory):
    term = logged_in(term_factory, server.port)
    term.wait_for(lambda _: REPORTS_ON in term.raw, what="the request for focus reports")
    term.type("\x04")
    assert term.exit_status() == 0
    assert term.raw.rfind(REPORTS_OFF) > term.raw.rfind(REPORTS_ON)


def test_without_the_focus_the_partner_alerts_too(server, term_factory, bob):
    term = logged_in(term_factory, server.port)
    term.enter("!to bob")
    term.wait_text("alice to bob>")
    bob.write(b"SEND alice with the focus\n")
    term.wait_text("From bob: with the focus")
    focus(term, False)
    bob.write(b"SEND alice without it\n")
    term.wait_text("From bob: without it")
    term.wait_for(lambda _: term.screen.title == "chatsh (1 unread)", what="the title")
    assert bells(term) == 1
    focus(term, True)
    bob.write(b"SEND alice with it again\n")
    term.wait_text("From bob: with it again")
    term.pump(0.3)
    assert bells(term) == 1 and term.screen.title == "chatsh (1 unread)"


def test_messages_are_counted_and_stay_unread_until_enter_on_an_empty_line(
        server, term_factory, bob):
    term = logged_in(term_factory, server.port, env_extra={"PROMPT_TOOLKIT_NO_CPR": "0"})
    for index in range(3):
        bob.write(b"SEND alice message %d\n" % index)
        term.wait_text(f"From bob: message {index}")
    term.wait_for(lambda _: term.screen.title == "chatsh (3 unread)", what="the count")
    term.wait_text(" unread: bob 3 |")
    term.type("!wh")  # typing reads nothing
    term.pump(0.3)
    assert POP_TITLE not in term.raw and "unread: bob 3" in term.screen_text
    term.type("\x15\r")  # the line cleared, then Enter on it empty
    term.wait_for(lambda _: POP_TITLE in term.raw, what="the title given back")
    term.wait_for(lambda screen: "unread" not in screen, what="the toolbar without unread")


def test_writing_to_someone_reads_their_messages_only(server, term_factory, bob):
    carol = RawClient(server.port)
    assert carol.login("carol") == b"HELLO carol"
    term = logged_in(term_factory, server.port, env_extra={"PROMPT_TOOLKIT_NO_CPR": "0"})
    bob.write(b"SEND alice one\nSEND alice two\n")
    term.wait_text("From bob: two")
    carol.write(b"SEND alice three\n")
    term.wait_text(" unread: carol 1, bob 2 |")
    term.enter("@bob hi")
    term.wait_text(" unread: carol 1 |")
    term.wait_for(lambda _: term.screen.title == "chatsh (1 unread)", what="the count")
    carol.close()


def test_focus_reports_never_reach_the_input_line(server, term_factory, bob):
    term = logged_in(term_factory, server.port)
    term.type("@bob a")
    term.focus(False)
    term.focus(True)
    term.type("b")
    term.child.send("\x1b")  # a report split over two reads
    time.sleep(0.05)
    term.child.send("[O")
    term.type("c")
    term.child.send("\x1b[I\x1b[200~d\x1b[201~")  # a report just before a paste
    term.enter()
    assert bob.read_line() == b"DELIVERY alice abcd"


def test_ctrl_z_takes_the_focus_reports_back_until_fg(server, term_factory):
    term = term_factory("--norc", "--noprofile", "-i", program="/bin/bash",
                        env_extra={"PS1": "shell$ "})
    term.wait_text("shell$")
    term.enter(f"{CHATSH} --port {server.port} --user zed")
    term.wait_text("Successfully logged in as zed!")
    term.wait_for(lambda _: REPORTS_ON in term.raw, what="the request for focus reports")
    term.type("\x1a")
    term.wait_text("Stopped")
    assert term.raw.rfind(REPORTS_OFF) > term.raw.rfind(REPORTS_ON)
    asked = term.raw.count(REPORTS_ON)
    term.enter("fg")
    term.wait_for(lambda _: term.raw.count(REPORTS_ON) > asked, what="asked again")
    term.enter("!quit")
    term.wait_for(lambda screen: screen.rstrip().endswith("shell$"), what="back in the shell")
    assert term.raw.rfind(REPORTS_OFF) > term.raw.rfind(REPORTS_ON)


def parsed(*chunks: str) -> tuple[list[bool], list[str]]:
    """The focus changes and the keys' text a :class:`FocusParser` makes of ``chunks``,
    each fed as one read."""
    from chatsh.ui.focus import FocusParser

    focus: list[bool] = []
    keys: list[str] = []
    parser = FocusParser(lambda press: keys.append(press.data), focus.append)
    for chunk in chunks:
        parser.feed(chunk)
    parser.flush()
    return focus, keys


@pytest.mark.parametrize("chunks", [("a\x1b[Ob",), ("a\x1b", "[Ob"), ("a\x1b[", "Ob"),
                                    ("a", "\x1b[I\x1b[O", "b")])
def test_a_report_whole_or_split_is_taken_out_of_the_keys(chunks):
    focus, keys = parsed(*chunks)
    assert focus[-1] is False and "".join(keys) == "ab"


def test_a_report_inside_a_paste_is_text_of_the_paste():
    focus, keys = parsed("\x1b[200~x\x1b[Iy\x1b[201~")
    assert focus == [] and keys == ["x\x1b[Iy"]
