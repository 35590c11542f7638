"""The shell and scripts on servers that differ from chatsh serve as published servers do
(tests/broken_server.py's faults), in a pseudo-terminal or as a script's run."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from broken_server import BrokenServer
from conftest import RawClient, made_by
from test_script import run_chatsh
from test_script_hardening import scripted_run


@pytest.fixture
def broken_factory():
    with made_by(BrokenServer, BrokenServer.stop) as make:
        yield make


def test_a_retry_refused_with_a_header_error_logs_in_on_a_new_connection(
        broken_factory, term_factory):
    """A server that keeps the connection after IN-USE but answers every later HELLO-FROM
    on it with BAD-RQST-HDR: the retry goes on a new connection, as after a close, and the
    user sees the lines of a normal retry, nothing about headers."""
    server = broken_factory("hdr-after-refusal")
    holders = [RawClient(server.port) for _ in range(2)]
    assert holders[0].login("bob") == b"HELLO bob"
    assert holders[1].login("carol") == b"HELLO carol"
    term = term_factory("--port", str(server.port))
    term.wait_text("login:")
    term.enter("bob")
    term.wait_text("Cannot log in as bob. That username is already in use.")
    term.enter("carol")  # taken as well: refused as a taken name, on the new connection
    term.wait_text("Cannot log in as carol. That username is already in use.")
    term.enter("dave")
    term.wait_text("Successfully logged in as dave!")
    assert "header" not in term.screen_text
    term.enter("!who")
    term.wait_text("There are 4 online users:")
    for holder in holders:
        holder.close()


def test_a_server_without_list_puts_no_error_on_the_screen_at_login(broken_factory,
                                                                   term_factory):
    """The shell's own LIST after login gets BAD-RQST-HDR from a server of the older
    version: nothing is shown for it; the toolbar says the count is unknown and Tab
    completes the names seen. A !who the user types is answered as the server answers."""
    server = broken_factory("older-version")
    bob = RawClient(server.port)
    assert bob.login("bob") == b"HELLO bob"
    term = term_factory("--port", str(server.port), "--user", "dave",
                        env_extra={"PROMPT_TOOLKIT_NO_CPR": "0"})
    term.wait_text("Successfully logged in as dave!")
    term.enter("@echobot after the list")  # its reply comes after the LIST's
    term.wait_text("From echobot: after the list")
    assert "Error" not in term.screen_text
    term.wait_text("| dave | online unknown | connected |")
    bob.write(b"SEND dave hi\n")
    term.wait_text("From bob: hi")
    term.wait_text(" unread: bob 1 | ")
    term.wait_text("| dave | online unknown | connected |")
    term.type("@b\t")
    term.wait_text("dave> @bob")
    term.type("\x15")  # Ctrl-U: the line is cleared
    term.enter("!who")
    term.wait_text("Error: Unknown issue in previous message header.")
    bob.close()


def test_a_script_on_a_server_without_list_ends_at_its_barrier(broken_factory):
    """The final LIST a script sends to know every reply has come gets BAD-RQST-HDR from
    a server of the older version: that reply is the barrier's all the same, the run ends
    at once with status 0, and stdout holds only what the script's lines got."""
    server = broken_factory("older-version")
    result = run_chatsh(server.port, "--reply-timeout", "20", "-c", "dave",
                        "-c", "@echobot hi", timeout=15)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as dave!", "The message was sent successfully",
        "From echobot: hi"]
    assert result.stderr == b""


def logged_in_as_dave(server, term_factory, reply_timeout, **options):
    """The shell logged in as dave on ``server``, with ``--reply-timeout``."""
    term = term_factory("--port", str(server.port), "--user", "dave",
                        "--reply-timeout", reply_timeout, **options)
    term.wait_text("Successfully logged in as dave!")
    return term


def test_a_script_on_a_server_of_the_older_version_takes_unknown_for_bad_dest_user(
        broken_factory):
    """The older version answers a SEND to no one with UNKNOWN, its word for BAD-DEST-USER:
    the line prints what BAD-DEST-USER prints, and the final LIST's BAD-RQST-HDR is the
    barrier's, not taken for the SEND's answer."""
    server = broken_factory("older-version")
    result = run_chatsh(server.port, "--reply-timeout", "20", "-c", "dave",
                        "-c", "@nobody hi", "-c", "@echobot hi", timeout=15)
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as dave!", "The destination user does not exist",
        "The message was sent successfully", "From echobot: hi"]
    assert (result.returncode, result.stderr) == (0, b"")


def test_a_request_never_answered_is_named_once_and_the_shell_goes_on(broken_factory,
                                                                     term_factory):
    """A server that keeps the connection but never answers again once it gets a SEND
    (a published server's thread dies so): after --reply-timeout the shell names the line
    and how long it waited, once, and the prompt still takes lines."""
    term = logged_in_as_dave(broken_factory("dies-on-send"), term_factory, "0.5")
    term.enter("@echobot are you there")
    notice = 'No reply to "@echobot are you there" after 0.5 s'
    term.wait_text(notice)
    term.enter("!who")
    term.wait_text('No reply to "!who" after 0.5 s')
    term.wait_for(lambda _: term.input_line() == "dave>", what="the prompt below it")
    assert term.screen_text.count(notice) == 1


def test_a_list_behind_a_send_never_answered_answers_the_who(broken_factory, term_factory):
    """A server that never answers one SEND but answers the LIST after it: the LIST-OK
    answers the !who (the list shows once, as the shell's own lists do not), and the SEND
    is the line named as unanswered, once; the next SEND is paired with its own reply."""
    notice = 'No reply to "@echobot lost" after 1 s'
    term = logged_in_as_dave(broken_factory("skips-first-send"), term_factory, "1",
                             env_extra={"CHATSH_REFRESH": "0.2"})
    for line, shown in (("@echobot lost", None), ("!who", "There are 2 online users:"),
                        (None, notice), ("@echobot found", "From echobot: found")):
        if line:
            term.enter(line)
        if shown:
            term.wait_text(shown)
    term.wait_for(lambda _: term.input_line() == "dave>", what="the prompt below it")
    time.sleep(1.5)  # as long as a second notice, a !who named or a refreshed list would take
    screen = term.screen_text
    assert screen.count("There are 2 online users:") == 1, screen
    assert screen.count(notice) == 1 and "!who" not in screen.replace("> !who", ""), screen
    assert screen.count("The message was sent successfully") == 1, screen


def test_a_script_names_the_send_a_server_passed_over(broken_factory):
    """The same server under a script: each reply is paired with the request it answers,
    the list is printed once, and the run ends at its barrier, at once, naming the line
    the server went past with a status that is not 0."""
    server = broken_factory("skips-first-send")
    result = run_chatsh(server.port, "--reply-timeout", "20", "-c", "dave",
                        "-c", "@echobot lost", "-c", "!who", "-c", "@echobot found",
                        timeout=15)
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as dave!", "There are 2 online users:", "echobot", "dave",
        "The message was sent successfully", "From echobot: found"]
    assert result.stderr.decode().splitlines() == [
        "chatsh: the server answered later requests but not these:",
        "  line 2: @echobot lost"]
    assert result.returncode == 3


def test_a_script_names_its_own_final_list_when_that_goes_unanswered():
    """A server that takes a packet for a line glued the script's final LIST onto its
    last message, answered the message and never the LIST: the report names what chatsh
    waited for, its own request included, and what may have happened."""
    def serve(scripted):
        scripted.accept()
        assert scripted.read_line() == b"SEND echobot hi"
        scripted.send(b"SEND-OK\nDELIVERY echobot hi\n")
        assert scripted.read_line() == b"LIST"
        try:
            scripted.read_line()  # until chatsh gives up and closes
        except EOFError:
            pass

    result = scripted_run(serve, "--reply-timeout", "0.5", "-c", "me", "-c", "@echobot hi")
    assert result.returncode == 3
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as me!", "The message was sent successfully",
        "From echobot: hi"]
    assert result.stderr.decode().splitlines() == [
        "chatsh: no reply from the server in 0.5 s",
        "chatsh: 1 request(s) got no reply:",
        "  the final LIST chatsh sends to know every reply has come (the server may not "
        "know LIST, or took it for part of the line before it: --stop-and-wait sends one "
        "request at a time)"]


MARKS = "!@#$%^&*"
"""What the course's reference server lets a name hold and the protocol's names do not."""


def test_a_user_whose_name_the_server_allowed_can_be_answered(broken_factory, term_factory):
    """The course's reference server logs in names with ``! @ # $ % ^ & *``: such a user
    can write to chatsh, is listed, completes with Tab and is answered with @ or !to; the
    server says whether the user exists."""
    server = broken_factory("allow:" + MARKS)
    ryo = RawClient(server.port)
    assert ryo.login("r#1") == b"HELLO r#1"
    term = term_factory("--port", str(server.port), "--user", "dave")
    term.wait_text("Successfully logged in as dave!")
    ryo.write(b"SEND dave hello from r#1\n")
    term.wait_text("From r#1: hello from r#1")
    term.enter("@r#1 hi back")
    term.wait_text("The message was sent successfully")
    assert ryo.read_line() == b"SEND-OK"
    assert ryo.read_line() == b"DELIVERY dave hi back"
    term.type("@r\t")
    term.wait_text("dave> @r#1")
    term.enter("completed")  # Tab put the space after the name
    assert ryo.read_line() == b"DELIVERY dave completed"
    term.enter("!to r#1")
    term.enter("in a conversation")
    assert ryo.read_line() == b"DELIVERY dave in a conversation"
    term.enter("!to")
    term.enter("@bob! typo")
    term.wait_text("The destination user does not exist (@bob!)")
    assert "not a valid user name" not in term.screen_text
    ryo.close()


def test_a_script_writes_to_a_name_the_server_allowed(broken_factory):
    """In a script as in the shell: a name with one of ``! @ # $ % ^ & *`` goes to the
    server, which delivers it or answers BAD-DEST-USER; a comma still separates names."""
    server = broken_factory("allow:" + MARKS)
    users = [RawClient(server.port) for _ in range(2)]
    assert users[0].login("r#1") == b"HELLO r#1"
    assert users[1].login("a@b") == b"HELLO a@b"
    result = run_chatsh(server.port, "-c", "dave", "-c", "@r#1 one", "-c", "@a@b,r#1 both",
                        "-c", "@x*y nobody", timeout=15)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as dave!", *["The message was sent successfully"] * 3,
        "The destination user does not exist"]
    assert result.stderr == b""
    assert [users[0].read_line() for _ in range(2)] == [
        b"DELIVERY dave one", b"DELIVERY dave both"]
    assert users[1].read_line() == b"DELIVERY dave both"
    for user in users:
        user.close()


def _late_deliveries(scripted, outcome):
    """After the client's end of stream, what a busy server still sends it: a reset
    (the client closed without reading) is what the reference server dies of."""
    try:
        scripted.read_line()
    except EOFError:
        pass
    try:
        for number in range(20):
            scripted.send(b"DELIVERY bob late %d\n" % number)
            time.sleep(0.01)
        outcome["reset"] = False
    except (BrokenPipeError, ConnectionResetError):
        outcome["reset"] = True
    scripted.conn.shutdown(socket.SHUT_WR)  # the server closes in turn


def test_a_script_leaves_without_resetting_the_connection():
    """The course's reference server dies (OSError: [Errno 107]) when a connection it
    writes to is reset: a script that ended while messages were arriving took it down for
    everyone. A script ends its stream, reads what still comes until the server closes
    (shown nowhere), and closes only then."""
    outcome: dict[str, bool] = {}

    def serve(scripted):
        scripted.accept()
        assert scripted.read_line() == b"LIST"
        scripted.send(b"LIST-OK me\n")
        _late_deliveries(scripted, outcome)

    result = scripted_run(serve, "-c", "me")
    assert result.returncode == 0, result.stderr
    assert outcome == {"reset": False}
    assert result.stdout.decode().splitlines() == ["Successfully logged in as me!"]
    assert result.stderr == b""


def test_the_shell_leaves_without_resetting_the_connection(scripted, term_factory):
    """!quit as a script's end: no reset for a server still writing, nothing more shown,
    and the shell does not wait for the server's close past a moment."""
    outcome: dict[str, bool] = {}

    def serve():
        scripted.accept()
        assert scripted.read_line() == b"LIST"
        scripted.send(b"LIST-OK me\n")
        _late_deliveries(scripted, outcome)

    thread = threading.Thread(target=serve)
    thread.start()
    term = term_factory("--port", str(scripted.port), "--user", "me")
    term.wait_text("Successfully logged in as me!")
    term.enter("!quit")
    assert term.exit_status() == 0
    thread.join(10)
    assert outcome == {"reset": False}
    assert "late" not in term.screen_text and "lost" not in term.screen_text
