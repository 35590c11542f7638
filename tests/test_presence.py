"""The user list kept fresh while the shell is open, in a pseudo-terminal: the count,
who you talked with coming and going, and servers without lists."""

from __future__ import annotations

from conftest import RawClient
from terminal import logged_in

FAST = {"CHATSH_REFRESH": "0.3", "PROMPT_TOOLKIT_NO_CPR": "0"}
"""A list every 0.3 s, and a terminal that answers where its cursor is (the toolbar)."""


def asked_for_the_list(scripted, term_factory):
    """The shell logged in as me on the scripted server, which read its first LIST."""
    term = term_factory("--port", str(scripted.port), env_extra=FAST)
    term.wait_text("login:")
    term.enter("me")
    scripted.accept()
    assert scripted.read_line() == b"LIST"
    return term


def asked_no_more(scripted, term) -> None:
    """No LIST comes in three times the pace (the next line is the SEND typed after),
    and no error was shown."""
    term.pump(1.0)
    term.enter("@echobot after")
    assert scripted.read_line() == b"SEND echobot after"
    assert "Error" not in term.screen_text


def test_the_count_stays_fresh_and_people_you_talked_with_come_and_go(
        server, term_factory, bob):
    term = logged_in(term_factory, server.port, env_extra=FAST)
    bob.write(b"SEND alice hi\n")
    term.wait_text("From bob: hi")
    term.wait_text("| 3 online |")
    bob.close()
    term.wait_text("bob went offline.")
    term.wait_text("| 2 online |")
    carol = RawClient(server.port)
    assert carol.login("carol") == b"HELLO carol"  # a stranger: counted, not announced
    again = RawClient(server.port)
    assert again.login("bob") == b"HELLO bob"
    term.wait_text("bob is online.")
    term.wait_text("| 4 online |")
    assert "carol" not in term.screen_text and "Error" not in term.screen_text
    assert term.screen_text.count("bob went offline.") == 1
    carol.close()
    again.close()


def test_a_server_without_lists_is_asked_once_and_never_shows_an_error(scripted,
                                                                      term_factory):
    term = asked_for_the_list(scripted, term_factory)
    scripted.send(b"BAD-RQST-HDR\n")
    term.wait_text("Successfully logged in as me!")
    term.wait_text("online unknown")
    asked_no_more(scripted, term)


def test_a_refused_background_list_shows_nothing_and_ends_the_asking(scripted,
                                                                     term_factory):
    term = asked_for_the_list(scripted, term_factory)
    scripted.send(b"LIST-OK echobot,me\n")
    term.wait_text("| 2 online |")
    assert scripted.read_line() == b"LIST"  # asked again, by itself
    scripted.send(b"LIST-OK echobot,me,zoe\n")
    term.wait_text("| 3 online |")
    assert scripted.read_line() == b"LIST"
    scripted.send(b"BAD-RQST-HDR\n")
    term.wait_text("online unknown")
    asked_no_more(scripted, term)
