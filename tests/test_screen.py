"""The shell's screen in a pseudo-terminal: completion, narrow terminals, resizes."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import CHATSH, DEADLINE, RawClient, chatsh_env
from terminal import Terminal, logged_in
from wcwidth import wcswidth


def log_in(term: Terminal, name: str) -> None:
    term.wait_text("login:")
    term.enter(name)
    term.wait_text(f"Successfully logged in as {name}!")


def test_tab_after_a_comma_completes_the_next_recipient(server, term_factory):
    """``@bob,ca`` + Tab gives ``@bob,carol ``, and the line goes to both."""
    peers = {name: RawClient(server.port) for name in ("bob", "carol")}
    for name, peer in peers.items():
        assert peer.login(name) == f"HELLO {name}".encode()
    term = term_factory("--port", str(server.port))
    log_in(term, "ann")
    term.enter("!who")
    term.wait_text("There are 4 online users:")
    term.type("@bob,ca\t")
    term.wait_text("ann> @bob,carol")
    term.enter("both of you")
    for peer in peers.values():
        assert peer.read_line() == b"DELIVERY ann both of you"


def scripted_shell(scripted, term_factory, *options: str, cols: int = 60,
                   **kwargs) -> Terminal:
    """The shell logged in as ``me`` to the scripted server, ``cols`` columns wide."""
    term = term_factory("--port", str(scripted.port), *options, cols=cols, **kwargs)
    term.wait_text("login:")
    term.enter("me")
    scripted.accept()
    assert scripted.read_line() == b"LIST"
    scripted.send(b"LIST-OK echobot,me\n")
    term.wait_for(lambda _: "logged in as me!" in term.flowed_text, what="the login")
    return term


def message_rows(term: Terminal, head: str, last: str) -> list[str]:
    """The rows of the message whose first row holds ``head``, to the row holding
    ``last``."""
    def found() -> tuple[int, int] | None:
        rows = term.screen.display
        first = next((index for index, row in enumerate(rows) if head in row), None)
        if first is None:
            return None
        end = next((index for index in range(first, len(rows)) if last in rows[index]),
                   None)
        return None if end is None else (first, end)

    term.wait_for(lambda _: found() is not None, what=f"{head!r} to {last!r}")
    first, end = found() or (0, 0)
    return [row.rstrip() for row in term.screen.display[first:end + 1]]


def cells(text: str) -> int:
    return wcswidth(text)


def assert_hung(rows: list[str], head: int, indent: int, body: str) -> None:
    """Every row after the first starts ``indent`` columns in, and the rows hold the
    body (after the first row's ``head`` characters) with its words whole, in order."""
    for row in rows[1:]:
        assert row[:indent].strip() == "" and row[indent:indent + 1].strip(), rows
    text = [rows[0][head:], *(row[indent:] for row in rows[1:])]
    assert " ".join(text).split() == body.split(), rows


def test_a_long_message_hangs_under_the_sender_with_its_words_whole(scripted, term_factory):
    """At 60 columns a message wraps between words, each row after the first starting
    under the message, after ``From bob: ``, as WeeChat does; in a flood's batch too."""
    term = scripted_shell(scripted, term_factory)
    body = " ".join(f"word{index:02d}" for index in range(30))  # 209 characters
    scripted.send(f"DELIVERY bob {body}\n".encode())
    rows = message_rows(term, "From bob: word00", "word29")
    assert len(rows) == 5 and all(len(row) <= 60 for row in rows), rows
    assert_hung(rows, len("From bob: "), len("From bob: "), body)
    scripted.send(b"".join(f"DELIVERY carol {index} {body} end{index}\n".encode()
                           for index in range(3)))
    rows = message_rows(term, "From carol: 2 word00", "end2")
    assert_hung(rows, len("From carol: "), len("From carol: "), f"2 {body} end2")


HOSTILE_BODIES = [
    "漢字かな交じり文" * 12,  # wide characters, no space to break at
    "e\u0301" * 150,  # a combining accent on every letter
    ("ab " + "\u202eevil\u202c " + "é" * 7 + " ") * 8,  # bidi controls, escaped
    "x" * 49 + " 漢字 " + "y" * 100,  # a wide character at the wrap point
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=["wide", "combining", "bidi", "wide-at-edge"])
def test_wide_combining_and_bidi_characters_at_the_wrap_point(scripted, term_factory,
                                                              body):
    """No row is wider than the terminal (the terminal would wrap it at column 0) and
    every row after the first is hung under the name, a wide name too."""
    term = scripted_shell(scripted, term_factory)
    scripted.send(f"DELIVERY 名前 {body}!end\n".encode())
    rows = message_rows(term, "From 名前: ", "end")
    assert len(rows) > 1 and all(cells(row) <= 60 for row in rows), rows
    indent = cells("From 名前: ")
    for row in rows[1:]:
        assert row.startswith(" " * indent) and row[indent] != " ", rows


def test_a_terminal_of_20_columns_hangs_less_under_a_long_name(scripted, term_factory):
    """A name that leaves too little room hangs rows two columns in; nothing is lost."""
    term = scripted_shell(scripted, term_factory, cols=20)
    body = "one two three four five six seven eight nine ten"
    scripted.send(f"DELIVERY alexandra {body}\n".encode())
    rows = message_rows(term, "From alexandra:", "ten")
    assert all(len(row) <= 20 for row in rows), rows
    assert_hung(rows, len("From alexandra: "), 2, body)


def test_stamped_and_stored_lines_hang_after_their_heads(scripted, term_factory):
    """With --timestamps the rows hang after the stamp and the name; !last's lines
    after ``<bob> ``."""
    term = scripted_shell(scripted, term_factory, "--timestamps", "%H:%M")
    body = " ".join(f"stamp{index:02d}" for index in range(20))
    scripted.send(f"DELIVERY bob {body}\n".encode())
    rows = message_rows(term, "From bob: stamp00", "stamp19")
    assert_hung(rows, len("[00:00] From bob: "), len("[00:00] From bob: "), body)
    term.enter("!last bob 1")
    term.wait_text("The last message with bob:")
    rows = message_rows(term, "<bob> stamp00", "stamp19")
    when = len("[00:00] 2026-12-07 14:03 <bob> ")
    assert_hung(rows, when, when, body)


def test_the_toolbar_keeps_the_unread_list_when_narrow(server, term_factory, bob):
    """At 60 columns the unread list comes first and the least useful parts go."""
    term = term_factory("--port", str(server.port), "--user", "alice", cols=60,
                        env_extra={"PROMPT_TOOLKIT_NO_CPR": "0"})
    term.wait_text("alice | 3 online | connected")
    bob.write(b"SEND alice hello there\n")
    term.wait_text("From bob: hello there")
    term.wait_text(" unread: bob 1 |")
    toolbar = term.lines[-1]
    assert "connected" in toolbar and len(toolbar) <= 60, toolbar


class Tmux:
    """chatsh in a tmux of its own (a socket named ``name`` in tmux's own short folder,
    as a socket's path is limited to 107 bytes): a terminal that reflows its rows
    when resized, as most do (VTE, kitty, iTerm2, Windows Terminal); pyte does not."""

    def __init__(self, name: str, command: list[str], cols: int, rows: int) -> None:
        self.name = name
        env = " ".join(f"{key}={shlex.quote(value)}" for key, value in chatsh_env(
            TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="0").items()
            if key in {"HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "PATH",
                       "TERM", "PROMPT_TOOLKIT_NO_CPR", "PYTHONSAFEPATH"})
        self.tmux("new-session", "-d", "-x", str(cols), "-y", str(rows),  # TMUX as tmux sets it
                  f'env -i {env} TMUX="$TMUX" {shlex.join(command)}')
        self.pid = int(self.tmux("display-message", "-p", "#{pid}"))
        self.socket = self.tmux("display-message", "-p", "#{socket_path}")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args],
                              check=True, capture_output=True, text=True,
                              timeout=DEADLINE).stdout.strip()

    def text(self) -> str:
        """The scrollback and the screen."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-")

    def wait_text(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while text not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {text!r}:\n{self.text()}")
            time.sleep(0.05)

    def wait_bottom(self, text: str) -> None:
        """Wait for ``text`` in the screen's last row."""
        deadline = time.monotonic() + DEADLINE
        last = str(int(self.tmux("display-message", "-p", "#{pane_height}")) - 1)
        while text not in self.tmux("capture-pane", "-p", "-S", last, "-E", last):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {text!r} at the bottom:\n"
                                     + self.text())
            time.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        with contextlib.suppress(FileNotFoundError):  # SIGTERM leaves it behind
            os.unlink(self.socket)


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    made: list[Tmux] = []

    def make(*args: str, cols: int = 60, rows: int = 20) -> Tmux:
        name = f"chatsh-test-{os.getpid()}-{len(made)}-{tmp_path.name}"[:60]
        made.append(Tmux(name, [CHATSH, *args], cols, rows))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def test_a_resize_mid_draft_leaves_no_copy_of_the_prompt(server, tmux):
    """Narrowed and widened again with a draft of two rows, in a terminal that reflows:
    the draft is on the screen once, nothing of it left above the prompt. (The prompt
    is at the bottom, as in a conversation: at the top of an empty terminal, a prompt
    whose rows and toolbar grow by more rows than there are above it is pushed into
    the scrollback by the terminal itself, out of reach.)"""
    bob = RawClient(server.port)
    assert bob.login("bob") == b"HELLO bob"
    term = tmux("--port", str(server.port), "--user", "alice")
    term.wait_bottom("connected")  # the terminal said where the prompt is
    bob.write(b"".join(b"SEND alice line %d of the talk\n" % index for index in range(24)))
    bob.write(b"SEND alice a line before the draft\n")
    term.wait_text("From bob: a line before the draft")  # the prompt at the bottom
    draft = "@bob a draft long enough to take two rows of the terminal, typed " \
            "and not sent"
    term.tmux("send-keys", "-l", draft)
    term.wait_text("typed and not sent")
    for cols in (100, 40, 80, 30, 60, 45):
        term.tmux("resize-window", "-x", str(cols), "-y", "20")
        time.sleep(0.3)
    bob.write(b"SEND alice a line after the resizes\n")
    term.wait_text("a line after the resizes")
    term.wait_bottom("connected")  # the prompt drawn again below it
    shown = term.text()
    assert shown.count("a draft long") == 1 and shown.count("alice>") == 1, shown
    assert "From bob: a line before the draft" in shown, shown


def test_a_resize_after_a_pasted_draft_grew_over_the_toolbar_leaves_no_copy(server, tmux):
    """A pasted draft of two lines, its first as wide as the terminal, drawn at the bottom
    of a full terminal: a row of it once held the toolbar and was cleared to its end,
    and tmux reflows such a row as wide as it was (an empty row more). Made narrower,
    the shell leaves no row of the draft behind."""
    bob = RawClient(server.port)
    assert bob.login("bob") == b"HELLO bob"
    term = tmux("--port", str(server.port), "--user", "alice")
    term.wait_bottom("connected")
    bob.write(b"".join(b"SEND alice line %d of the talk\n" % index for index in range(24)))
    term.wait_text("From bob: line 23 of the talk")
    term.tmux("set-buffer", "-b", "draft", "@bob " + "word " * 11 + "wordy\nshort")
    term.tmux("paste-buffer", "-p", "-b", "draft")
    term.wait_text("wordy")
    time.sleep(0.3)
    term.tmux("resize-window", "-x", "40", "-y", "20")
    time.sleep(0.3)
    bob.write(b"SEND alice a line after the resize\n")
    term.wait_text("a line after the resize")
    term.wait_bottom("connected")  # the prompt drawn again below it
    shown = term.text()
    assert shown.count("alice>") == 1, shown
    assert "From bob: line 23 of the talk" in shown, shown

def test_a_resize_during_a_flood_folds_what_comes_after_for_the_new_width(scripted,
                                                                          term_factory):
    """Lines made for 100 columns and written after the terminal went down to 50 are
    folded for 50, and the flood goes on to its end."""
    term = scripted_shell(scripted, term_factory, cols=100)
    body = "a flood line of ordinary words long enough for two rows at fifty"
    scripted.send(b"".join(f"DELIVERY bob {index} {body}\n".encode()
                           for index in range(3000)))
    term.wait_text("From bob: ")
    term.resize(24, 50)
    scripted.send(f"DELIVERY bob last {body}\n".encode())
    rows = message_rows(term, "From bob: last", "at fifty")
    assert len(rows) == 2 and all(len(row) <= 50 for row in rows), rows
    assert_hung(rows, len("From bob: "), len("From bob: "), f"last {body}")
    term.enter("!who")
    assert scripted.read_line() == b"LIST"


def test_help_at_60_columns_hangs_each_description_under_its_column(scripted,
                                                                    term_factory):
    term = scripted_shell(scripted, term_factory, rows=40)
    term.enter("!help")
    rows = message_rows(term, "  !mute USER", "toolbar)")
    column = rows[0].index("keep")
    assert column > 20 and len(rows) > 1 and all(len(row) <= 60 for row in rows), rows
    assert_hung(rows, column, column, "keep USER's messages off the screen (still kept, "
                                      "and counted in the toolbar)")


def test_resizes_during_a_flood_leave_no_copy_of_the_draft(server, tmux):
    """Lines pour in while the terminal is made narrower and wider again: the draft is
    drawn once, under the last line."""
    bob = RawClient(server.port)
    assert bob.login("bob") == b"HELLO bob"
    term = tmux("--port", str(server.port), "--user", "alice")
    term.wait_bottom("connected")
    bob.write(b"SEND alice before the flood\n")
    term.wait_text("From bob: before the flood")
    draft = "@bob a draft long enough to take two rows of the terminal, typed " \
            "and not sent"
    term.tmux("send-keys", "-l", draft)
    term.wait_text("typed and not sent")
    for round, cols in enumerate((40, 70, 35, 60, 30, 60)):
        bob.write(b"".join(b"SEND alice round %d line %d of the flood\n" % (round, index)
                           for index in range(150)))
        time.sleep(0.05)
        term.tmux("resize-window", "-x", str(cols), "-y", "20")
        time.sleep(0.2)
    bob.write(b"SEND alice the end\n")
    term.wait_text("From bob: the end")
    time.sleep(1)
    shown = term.text()
    assert shown.count("a draft long") == 1 and shown.count("alice>") == 1, shown



def test_messages_drawn_before_the_terminal_says_where_the_prompt_was(scripted,
                                                                      term_factory):
    """A terminal that answers where the cursor is only after a flood was drawn (a slow
    link) tells where the prompt was before it: the prompt asks again, and stays at the
    bottom instead of taking every row below where it first was."""
    term = term_factory("--port", str(scripted.port), "--user", "me", rows=24,
                        env_extra={"PROMPT_TOOLKIT_NO_CPR": "0"})
    term.hold_answers()
    name = scripted.accept()
    assert scripted.read_line() == b"LIST"
    scripted.send(f"LIST-OK echobot,{name}\n".encode())
    term.wait_for(lambda screen: "me>" in screen, what="the prompt")
    scripted.send(b"".join(b"DELIVERY bob line %d\n" % index for index in range(30)))
    term.wait_text("line 29")
    asked = term.raw.count(b"\x1b[6n")
    term.send_answers()
    term.wait_for(lambda _: term.raw.count(b"\x1b[6n") > asked, timeout=3,
                  what="the prompt asking again where it is")
    term.wait_for(lambda _: any(row.startswith("me>") for row in term.lines[-3:]),
                  timeout=3, what="the prompt at the bottom")


def test_a_terminal_that_hangs_up_keeps_what_came_just_before(server, term_factory, bob):
    """The terminal goes away (its window closed, ssh lost) just after a message came:
    chatsh leaves as for SIGHUP (status 129) and keeps the message, though every write
    to the terminal now fails."""
    term = logged_in(term_factory, server.port)
    bob.write(b"SEND alice just before the hangup\n")
    term.wait_text("From bob: just before the hangup")
    term.child.ptyproc.fileobj.close()  # the terminal's side closed: the kernel hangs up
    status = term.child.wait()
    again = logged_in(term_factory, server.port)
    again.enter("!last bob 1")
    again.wait_text("<bob> just before the hangup")
    assert status == 128 + signal.SIGHUP


def test_a_hangup_seen_before_its_signal_still_leaves_as_for_sighup(server, term_factory,
                                                                   bob, tmp_path):
    """Every write to a terminal that hung up fails (EIO), and one may fail before the
    SIGHUP is handled; here SIGHUP is blocked, so only the failed writes tell. chatsh
    leaves as for SIGHUP all the same (status 129) and keeps what
    came before."""
    blocked = tmp_path / "sighup-blocked"
    blocked.write_text(f"#!{sys.executable}\nimport os, signal, sys\n"
                       "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})\n"
                       f"os.execv({CHATSH!r}, [{CHATSH!r}, *sys.argv[1:]])\n")
    blocked.chmod(0o755)
    term = logged_in(term_factory, server.port, program=str(blocked))
    bob.write(b"SEND alice just before the hangup\n")
    term.wait_text("From bob: just before the hangup")
    term.child.ptyproc.fileobj.close()  # the terminal's side closed: writes fail
    bob.write(b"SEND alice after the hangup\n")
    deadline = time.monotonic() + DEADLINE
    while term.child.isalive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not term.child.isalive(), "chatsh still runs on a terminal that hung up"
    assert term.child.wait() == 128 + signal.SIGHUP
    again = logged_in(term_factory, server.port)
    again.enter("!last bob 2")
    again.wait_text("<bob> just before the hangup")
