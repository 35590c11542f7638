"""The message store in the shell, in a pseudo-terminal: !last, !search, !mute, and
what comes back after a restart."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import CHATSH
from terminal import Terminal, logged_in


def leave(term: Terminal) -> None:
    term.enter("!quit")
    assert term.exit_status() == 0


def stores() -> list[Path]:
    return sorted((Path(os.environ["XDG_DATA_HOME"]) / "chatsh").glob("*.sqlite3"))


def test_last_shows_a_conversation_again_after_a_restart(server, term_factory, bob):
    term = logged_in(term_factory, server.port)
    bob.write(b"SEND alice are you there\n")
    term.wait_text("From bob: are you there")
    term.enter("@bob yes, here")
    term.wait_text("The message was sent successfully")
    term.enter("@echobot ping")
    term.wait_text("From echobot: ping")
    leave(term)
    [path] = stores()
    assert path.name == f"alice@127.0.0.1%3A{server.port}.sqlite3"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    term = logged_in(term_factory, server.port)
    assert "are you there" not in term.screen_text
    term.enter("!last bob")
    term.wait_text("The last 2 messages with bob:")
    lines = term.lines
    start = lines.index("The last 2 messages with bob:")
    assert lines[start + 1].endswith(" <bob> are you there")
    assert lines[start + 2].endswith(" <alice> @bob yes, here")
    term.enter("!last 3")
    term.wait_text("The last 3 messages:")
    term.wait_text("<echobot> ping")
    term.wait_for(lambda _: term.input_line() == "alice>", what="the prompt after them")
    leave(term)


def test_the_partner_and_recent_contacts_come_back_after_a_restart(server, term_factory,
                                                                   bob):
    term = logged_in(term_factory, server.port)
    bob.write(b"SEND alice hi\n")
    term.wait_text("From bob: hi")
    term.enter("!to echobot")
    term.wait_text("alice to echobot>")
    leave(term)

    term = logged_in(term_factory, server.port)
    term.wait_text("Lines without @ go to echobot now; !to alone stops.")
    term.wait_text("alice to echobot>")
    term.type("\t")  # Tab on an empty line: whoever wrote last
    term.wait_text("alice to echobot> @bob")
    term.type("\x15!to\r")
    term.wait_text("Lines without @ go to nobody now.")
    leave(term)
    term = logged_in(term_factory, server.port)
    term.enter("!who")
    term.wait_text("There are 3 online users:")
    assert "to echobot" not in term.screen_text


def test_stored_text_is_escaped_when_shown_again(server, term_factory, bob):
    term = logged_in(term_factory, server.port)
    bob.write(b"SEND alice \x1b]0;pwned\x07 and \x1b[2J gone\n")
    term.wait_text("From bob: ^[]0;pwned^G and ^[[2J gone")
    term.enter("!last bob 1")
    term.wait_text("<bob> ^[]0;pwned^G and ^[[2J gone")
    assert "pwned" not in term.screen.title
    assert term.screen_text.count("^[]0;pwned^G and ^[[2J gone") == 2
    leave(term)


def test_search_finds_words_in_every_conversation(server, term_factory, bob):
    term = logged_in(term_factory, server.port)
    bob.write(b"SEND alice see you tomorrow\nSEND alice no\n")
    term.wait_text("From bob: no")
    term.enter("@echobot Tomorrow it is")
    term.wait_text("From echobot: Tomorrow it is")
    term.enter("!search tomor")
    term.wait_text("3 messages hold tomor:")
    term.wait_text("<bob> see you tomorrow")
    term.wait_text("<alice> @echobot Tomorrow it is")
    term.wait_text("<echobot> Tomorrow it is")
    term.enter("!search zebra")
    term.wait_text("No kept message holds zebra.")
    leave(term)


def test_mute_keeps_a_sender_off_the_screen_but_stored_and_counted(server, term_factory, bob):
    term = logged_in(term_factory, server.port, env_extra={"PROMPT_TOOLKIT_NO_CPR": "0"})
    term.enter("!mute bob")
    term.wait_text("bob's messages stay off the screen now")
    bob.write(b"SEND alice one\nSEND alice two\n")
    term.wait_text("| muted: bob 2 |")
    term.enter("@echobot after")
    term.wait_text("From echobot: after")
    assert "From bob" not in term.screen_text
    assert term.screen.title == ""  # a muted sender rings nothing
    term.enter("!last bob")
    term.wait_text("<bob> two")
    term.enter("!unmute bob")
    term.wait_text("bob's messages are shown again.")
    bob.write(b"SEND alice three\n")
    term.wait_text("From bob: three")
    term.enter("!unmute carol")  # never muted: nothing to show again
    term.wait_text("carol is not muted.")
    leave(term)


def test_mute_is_kept_across_a_restart(server, term_factory, bob):
    term = logged_in(term_factory, server.port)
    term.enter("!mute bob")
    term.wait_text("bob's messages stay off the screen now")
    leave(term)
    term = logged_in(term_factory, server.port)
    term.enter("!last")  # the store has answered: what it remembers is in place
    term.wait_text("No messages are kept.")
    bob.write(b"SEND alice hidden\n")
    term.enter("@echobot shown")
    term.wait_text("From echobot: shown")
    term.pump(0.2)
    assert "hidden" not in term.screen_text
    leave(term)


def test_no_store_keeps_nothing_and_says_so(server, term_factory, bob, tmp_path):
    term = logged_in(term_factory, server.port, "--no-store")
    bob.write(b"SEND alice not kept\n")
    term.wait_text("From bob: not kept")
    term.enter("!last bob")
    term.wait_text("Cannot look: the message store is off (--no-store, or store = false")
    leave(term)
    config = tmp_path / "config" / "chatsh"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("store = false\n")
    term = logged_in(term_factory, server.port,
                     env_extra={"XDG_CONFIG_HOME": str(tmp_path / "config")})
    term.enter("!search kept")
    term.wait_text("Cannot look: the message store is off")
    leave(term)
    assert stores() == []


@pytest.mark.parametrize("spoil", ["garbage", "in use"])
def test_a_store_that_cannot_be_opened_is_one_line_and_the_shell_goes_on(
        server, term_factory, bob, spoil):
    if spoil == "garbage":
        directory = Path(os.environ["XDG_DATA_HOME"]) / "chatsh"
        directory.mkdir(parents=True)
        (directory / f"alice@127.0.0.1%3A{server.port}.sqlite3").write_bytes(b"x" * 4096)
    else:  # two shells logged in as alice on two private servers: one store
        held = term_factory("--user", "alice")
        held.wait_text("Successfully logged in as alice!")
        held.enter("!last")
        held.wait_text("No messages are kept.")
        other = term_factory("--user", "alice")
        other.wait_text("Successfully logged in as alice!")
        other.wait_text("is in use by another chatsh; going on without it")
        other.enter("@echobot still works")
        other.wait_text("From echobot: still works")
        other.enter("!last")
        other.wait_text("Cannot look: the message store is off (see above).")
        return
    term = logged_in(term_factory, server.port)
    term.wait_text("going on without it")
    assert sum("message store" in line for line in term.lines) == 1
    bob.write(b"SEND alice hello\n")
    term.wait_text("From bob: hello")
    term.enter("!last")
    term.wait_text("Cannot look: the message store is off (see above).")
    leave(term)


def test_scripts_refuse_the_store_commands(server):
    import subprocess

    from conftest import chatsh_env

    done = subprocess.run([CHATSH, "--port", str(server.port), "--user", "carl", "-c", "!last",
                           "-c", "!search x"], capture_output=True, text=True,
                          env=chatsh_env(), timeout=10)
    assert "!last is for the interactive shell." in done.stderr
    assert "!search is for the interactive shell." in done.stderr
    assert stores() == []


def test_typed_bytes_that_are_not_utf8_are_replaced_not_a_traceback(server, term_factory,
                                                                       bob):
    """A terminal not set to UTF-8 (or binary pasted) types bytes that are not UTF-8,
    which reach the line as lone surrogates that no encoder takes: '!search caf\\xe9'
    ended the store's thread with a traceback on the screen (nothing was kept after
    it), '@bob caf\\xe9' ended the shell with one, and the history kept a '?' for it.
    Each such byte is a U+FFFD, the same everywhere."""
    term = logged_in(term_factory, server.port)
    term.child.send(b"!search caf\xe9\r")
    term.wait_text("No kept message holds caf\ufffd.")
    term.child.send(b"@bob caf\xe9 au lait\r")
    term.wait_text("The message was sent successfully")
    assert bob.read_line() == "DELIVERY alice caf\ufffd au lait".encode()
    term.enter("!search lait")
    term.wait_text("<alice> @bob caf\ufffd au lait")
    assert "Traceback" not in term.screen_text
    leave(term)
    history = Path(os.environ["XDG_STATE_HOME"]) / "chatsh" / "history"
    assert "+@bob caf\ufffd au lait\n" in history.read_text()


def test_a_full_disk_stops_the_store_in_one_line_and_the_shell_goes_on(server, term_factory,
                                                                       bob):
    """The disk fills (here: a limit on the size of files chatsh writes, 100 KiB)."""
    term = term_factory("-c", f"ulimit -f 200 && exec {CHATSH} --port {server.port} "
                              "--user alice", program="/bin/sh")
    term.wait_text("Successfully logged in as alice!")
    for number in range(60):
        bob.write(b"SEND alice %d %s\n" % (number, b"x" * 4000))
    term.wait_text("cannot write the message store any more")
    assert sum("message store" in line for line in term.lines) == 1
    bob.write(b"SEND alice still here\n")
    term.wait_text("From bob: still here")
    term.enter("!last")
    term.wait_text("Cannot look: the message store is off (see above).")
    assert "Traceback" not in term.screen_text
    leave(term)


def test_a_store_removed_while_the_shell_runs_is_one_line_and_the_shell_goes_on(
        server, term_factory, bob):
    """A clean-up removed ~/.local/share/chatsh meanwhile: every message after went
    into the removed file, lost without a word."""
    term = logged_in(term_factory, server.port)
    bob.write(b"SEND alice one\n")
    term.wait_text("From bob: one")
    term.enter("!last")
    term.wait_text("The last message:")
    [path] = stores()
    shutil.rmtree(path.parent)
    bob.write(b"SEND alice two\n")
    term.wait_text("From bob: two")
    said = f"{path} was removed or replaced while chatsh ran; going on without it"
    term.wait_for(lambda _: said in term.flowed_text, what="the store's one line")
    assert "Traceback" not in term.screen_text
    term.enter("!last")
    term.wait_text("Cannot look: the message store is off (see above).")
    leave(term)



def answer(term: Terminal, command: str, heading: str, count: int) -> list[str]:
    """The ``count`` lines after ``heading``, once ``command`` was answered by them."""
    term.enter(command)
    term.wait_for(lambda _: heading in term.lines
                  and len(term.lines) > term.lines.index(heading) + count,
                  what=f"the answer to {command}")
    start = term.lines.index(heading) + 1
    return term.lines[start:start + count]


def test_a_refused_message_is_kept_marked_not_delivered(server, term_factory):
    term = logged_in(term_factory, server.port)
    term.enter("@echobot delivered")
    term.wait_text("From echobot: delivered")
    term.enter("@bob sure, on it")  # bob is not online: BAD-DEST-USER
    term.wait_text("The destination user does not exist (@bob)")
    listed = answer(term, "!last 3", "The last 3 messages:", 3)
    assert [line[17:] for line in listed] == [
        "<alice> @echobot delivered", "<echobot> delivered",
        "<alice> @bob sure, on it (not delivered)"]
    term.enter("@echobot,bob both")  # one of two names refused: that one is marked
    term.wait_text("From echobot: both")
    listed = answer(term, "!search both", "3 messages hold both:", 3)
    assert [line[17:] for line in listed] == [
        "<alice> @echobot both", "<alice> @bob both (not delivered)", "<echobot> both"]
    leave(term)
