"""The interactive shell in a pseudo-terminal, one test or more per SPEC §2 id."""

from __future__ import annotations

import contextlib
import re
import signal
import stat
import threading
import time

import pytest
from conftest import CHATSH, RawClient
from terminal import ScriptedServer, Terminal

WELCOME = "Welcome to Chat Client. Enter your login:"


def log_in(term: Terminal, name: str) -> None:
    term.wait_text("login:")
    term.enter(name)
    term.wait_text(f"Successfully logged in as {name}!")


def title_is_ours(term: Terminal) -> bool:
    """The window title is untouched or chatsh's unread count: nothing a peer sent."""
    return term.screen.title == "" or re.fullmatch(r"chatsh \(\d+ unread\)",
                                                    term.screen.title) is not None


def peer_and_shell(server, term_factory, peer: str, me: str, *options: str
                   ) -> tuple[RawClient, Terminal]:
    """A raw client logged in as ``peer``, and the shell logged in as ``me``."""
    client = RawClient(server.port)
    assert client.login(peer) == f"HELLO {peer}".encode()
    term = term_factory("--port", str(server.port), *options)
    log_in(term, me)
    return client, term


def scripted_login(term: Terminal, server: ScriptedServer, users: str = "echobot") -> str:
    term.wait_text("login:")
    term.enter("me")
    name = server.accept()
    assert server.read_line() == b"LIST"
    server.send(f"LIST-OK {users},me\n".encode())
    term.wait_text("Successfully logged in as me!")
    return name


def test_welcome_login_echo_who_and_quit(server, term_factory):
    """RI2, RI3, RI7, RI8, RI10, RA7, RI11, RC2, RA8."""
    term = term_factory("--port", str(server.port))
    term.wait_text(WELCOME)
    log_in(term, "alice")
    term.enter("@echobot hello, wörld ✓")
    term.wait_text("From echobot: hello, wörld ✓")
    assert "The message was sent successfully" in term.screen_text
    term.enter("!who")
    term.wait_text("There are 2 online users:")
    lines = term.lines
    start = lines.index("There are 2 online users:")
    assert set(lines[start + 1:start + 3]) == {"echobot", "alice"}
    for word in ("SEND-OK", "DELIVERY", "LIST-OK", "HELLO"):
        assert word not in term.screen_text
    term.enter("!quit")
    assert term.exit_status() == 0


def test_a_partner_takes_lines_without_at_until_to_alone(server, term_factory):
    """irssi's query window, WeeChat's query buffer: ``!to bob`` and plain lines go to
    bob, the prompt says so; ``!to`` alone ends it and plain lines are refused again."""
    bob, term = peer_and_shell(server, term_factory, "bob", "alice")
    term.enter("!to bob")
    term.wait_text("Lines without @ go to bob now; !to alone stops.")
    term.wait_text("alice to bob>")
    term.enter("how are you")
    assert bob.read_line() == b"DELIVERY alice how are you"
    term.enter("@echobot still works")
    term.wait_text("From echobot: still works")
    term.enter("!to")
    term.wait_text("Lines without @ go to nobody now.")
    term.enter("hello?")
    term.wait_text("Start a message with @<user> or a command with !")
    bob.write(b"LIST\n")
    assert bob.read_line().startswith(b"LIST-OK")  # nothing more reached bob
    bob.close()


STAMPED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)")
OPENED = re.compile(r"--- Log opened \w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}")
CLOSED = re.compile(r"--- Log closed \w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}")


def logged(text: str) -> list[str]:
    """A chat log's lines, each message's time stamp checked and taken off."""
    lines = []
    for line in text.splitlines():
        stamped = STAMPED.fullmatch(line)
        assert stamped or OPENED.fullmatch(line) or CLOSED.fullmatch(line), line
        lines.append(stamped[1] if stamped else line[:len("--- Log opened")])
    return lines


def test_log_is_a_chat_log_of_the_messages_alone_appended_to(server, term_factory,
                                                               tmp_path):
    """--log: the messages sent and received, one time stamp each, between opened and
    closed lines, as irssi writes them; no status lines, network text escaped, no escape
    codes, 0600, appended to."""
    log = tmp_path / "chat.log"
    bob, term = peer_and_shell(server, term_factory, "bob", "alice", "--log", str(log))
    term.enter("@bob hi bob")
    assert bob.read_line() == b"DELIVERY alice hi bob"
    term.wait_text("The message was sent successfully")
    bob.write(b"SEND alice back \x1b[31mred\x07\n")
    term.wait_text("From bob: back ^[[31mred^G")
    term.enter("!who")
    term.wait_text("There are 3 online users:")
    term.enter("@nobody there")
    term.wait_text("The destination user does not exist")
    term.enter("!quit")
    assert term.exit_status() == 0
    text = log.read_text(encoding="utf-8")
    assert logged(text) == ["--- Log opened", "<alice> @bob hi bob",
                            "<bob> back ^[[31mred^G", "<alice> @nobody there",
                            "--- Log closed"]
    assert "\x1b" not in text and "\x07" not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    term2 = term_factory("--port", str(server.port), "--log", str(log))
    log_in(term2, "carol")
    term2.enter("!quit")
    assert term2.exit_status() == 0
    later = log.read_text(encoding="utf-8")
    assert later.startswith(text)  # appended, not replaced
    assert logged(later[len(text):]) == ["--- Log opened", "--- Log closed"]
    bob.close()


def test_log_escapes_what_is_typed_as_the_screen_does(server, term_factory, tmp_path):
    """A line pasted with ESC ] 0 ; title BEL replays nothing on ``cat``."""
    log = tmp_path / "chat.log"
    term = term_factory("--port", str(server.port), "--log", str(log))
    term.wait_text("login:")
    term.type("\x1b[200~\x1b]0;name\x07\x1b[2J\x1b[201~\r")
    term.wait_text("That username contains disallowed characters.")
    log_in(term, "alice")
    term.type("\x1b[200~@echobot \x1b]0;title\x07\u202eback\x1b[201~\r")
    term.wait_text("From echobot: ^[]0;title^G<U+202E>back")
    term.enter("!quit")
    assert term.exit_status() == 0
    text = log.read_text(encoding="utf-8")
    assert logged(text)[1:3] == ["<alice> @echobot ^[]0;title^G<U+202E>back",
                                 "<echobot> ^[]0;title^G<U+202E>back"]
    assert "name" not in text  # a login is no message
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text), text


def test_log_that_others_may_read_is_made_private_and_said_so(server, term_factory, tmp_path):
    log = tmp_path / "chat.log"
    log.write_text("an earlier session\n")
    log.chmod(0o644)
    term = term_factory("--port", str(server.port), "--log", str(log))
    term.wait_text("Welcome")
    log_in(term, "alice")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    term.enter("!quit")
    assert term.exit_status() == 0
    assert log.read_text().startswith("an earlier session\n")
    said = f"others could read the log {log} (mode 0644): it is 0600 now"
    assert term.flowed_text.count(said) == 1, term.screen_text  # one line, wrapped


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_log_that_is_no_regular_file_is_refused_in_one_line(server, term_factory, tmp_path,
                                                            kind):
    """A FIFO nobody reads held the shell before its prompt."""
    import os

    log = tmp_path / "chat.log"
    os.mkfifo(log) if kind == "fifo" else log.mkdir()
    term = term_factory("--port", str(server.port), "--log", str(log))
    said = f"cannot write the log {log}: not a regular file; going on without it"
    term.wait_for(lambda _: said in term.flowed_text, what="the refusal")
    log_in(term, "alice")
    term.enter("@echobot still here")
    term.wait_text("From echobot: still here")


def test_log_that_fails_mid_session_says_so_once(server, term_factory, tmp_path):
    """The file may grow to 8 KiB at most (ulimit -f): past it, writes fail (EFBIG) as
    on a full disk. One line on the screen says so; the shell goes on."""
    log = tmp_path / "chat.log"
    bob = RawClient(server.port)
    assert bob.login("bob") == b"HELLO bob"
    term = term_factory("-c", f"ulimit -f 16 && exec {CHATSH} --port {server.port} "
                        f"--user alice --no-store --log {log}", program="/bin/sh")
    term.wait_text("Successfully logged in as alice!")
    for index in range(100):
        bob.write(b"SEND alice line %d %s\n" % (index, b"x" * 100))
    term.wait_text("line 99 ")
    term.enter("@echobot after")
    term.wait_text("From echobot: after")
    said = b"cannot write the log any more: File too large"  # amid lines, maybe scrolled
    assert term.raw.count(said) == 1 and term.raw.count(b"log any more") == 1, term.raw
    assert 0 < log.stat().st_size <= 16 * 512
    bob.close()


def test_a_message_asks_for_attention_unless_you_are_writing_to_its_sender(
        server, term_factory):
    """The bell rings once per batch and the title counts the unread messages, until
    they are read (writing to their sender reads them, typing does not); a message from
    the one you are writing to asks nothing. (The toolbar's part is tested on Status:
    without cursor position reports, as in these tests, prompt_toolkit draws no
    toolbar.)"""
    bob, term = peer_and_shell(server, term_factory, "bob", "alice")
    bells = term.raw.count(b"\x07")
    bob.write(b"SEND alice ping\n")
    term.wait_for(lambda _: term.screen.title == "chatsh (1 unread)", what="the title")
    bob.write(b"SEND alice again\n")
    term.wait_for(lambda _: term.screen.title == "chatsh (2 unread)", what="the count")
    term.wait_text("From bob: again")
    assert term.raw.count(b"\x07") == bells + 2
    assert b"\x1b[22;0t" in term.raw  # the terminal's own title saved first
    term.type("@bob hi")
    term.wait_text("alice> @bob hi")  # the draft names bob before his message comes
    bob.write(b"SEND alice while you write to me\n")
    term.wait_text("From bob: while you write to me")
    assert b"\x1b[23;0t" not in term.raw  # typing read nothing
    term.type("\r")
    term.wait_text("The message was sent successfully")
    term.wait_for(lambda _: b"\x1b[23;0t" in term.raw, what="the title given back")
    bob.write(b"SEND alice and a reply after you wrote\n")
    term.wait_text("From bob: and a reply after you wrote")
    term.pump(0.3)
    assert term.raw.count(b"\x07") == bells + 2
    assert term.raw.count(b"\x1b[22;0t") == 1
    bob.close()


TITLE_SEQUENCE = re.compile(rb"\x1b\[2([23]);0t|\x1b\]0;(.*?)(?:\x1b\\|\x07)")


def title_left(raw: bytes) -> str:
    """The window title after ``raw``, as a terminal with a title stack keeps it
    (ESC[22;0t saves it, ESC[23;0t gives the saved one back); the first is ''."""
    title, stack = "", []
    for match in TITLE_SEQUENCE.finditer(raw):
        if match.group(1) == b"2":
            stack.append(title)
        elif match.group(1) == b"3":
            title = stack.pop() if stack else title
        else:
            title = match.group(2).decode()
    return title


def test_the_title_is_saved_once_and_given_back_at_exit(server, term_factory):
    """However many batches ask for attention, the terminal's title is saved once; Ctrl-D
    with messages unread gives it back (written out, not left in a buffer)."""
    bob, term = peer_and_shell(server, term_factory, "bob", "alice")
    bob.write(b"SEND alice one\n")
    term.wait_text("From bob: one")
    term.wait_for(lambda _: term.screen.title == "chatsh (1 unread)", what="the title")
    bob.write(b"SEND alice two\n")
    term.wait_text("From bob: two")
    term.type("\x04")
    assert term.exit_status() == 0
    assert term.raw.count(b"\x1b[22;0t") == term.raw.count(b"\x1b[23;0t") == 1
    assert title_left(bytes(term.raw)) == ""
    bob.close()


def test_the_partner_of_to_rings_no_bell(server, term_factory):
    bob, term = peer_and_shell(server, term_factory, "bob", "alice")
    carol = RawClient(server.port)
    assert carol.login("carol") == b"HELLO carol"
    term.enter("!to bob")
    term.wait_text("alice to bob>")
    bells = term.raw.count(b"\x07")
    bob.write(b"SEND alice from the partner\n")
    term.wait_text("From bob: from the partner")
    carol.write(b"SEND alice from someone else\n")
    term.wait_text("From carol: from someone else")
    term.wait_for(lambda _: term.raw.count(b"\x07") > bells, what="carol's bell")
    assert term.raw.count(b"\x07") == bells + 1  # bob's batch came first: it rang none
    assert term.screen.title == "chatsh (1 unread)"
    bob.close()
    carol.close()


def test_no_bell_keeps_the_title(server, term_factory):
    bob, term = peer_and_shell(server, term_factory, "bob", "alice", "--no-bell")
    bob.write(b"SEND alice ping\n")
    term.wait_for(lambda _: term.screen.title == "chatsh (1 unread)", what="the title")
    assert b"\x07" not in term.raw
    bob.close()


def test_the_settings_file_logs_in_and_stamps_and_flags_win(server, term_factory, tmp_path):
    (tmp_path / "chatsh").mkdir()
    (tmp_path / "chatsh" / "config.toml").write_text(
        f'port = {server.port}\nuser = "alice"\ntimestamps = "<%H>"\n')
    term = term_factory(env_extra={"XDG_CONFIG_HOME": str(tmp_path)})
    term.wait_text("Successfully logged in as alice!")  # no flag, no prompt for the name
    term.enter("@echobot stamped")
    term.wait_for(lambda screen: re.search(r"\[<\d\d>\] From echobot: stamped", screen),
                  what="a stamped line")
    term.enter("!quit")
    assert term.exit_status() == 0
    flagged = term_factory("--user", "bob", env_extra={"XDG_CONFIG_HOME": str(tmp_path)})
    flagged.wait_text("Successfully logged in as bob!")


def test_a_typo_in_the_settings_file_is_named_and_the_rest_counts(server, term_factory,
                                                                   tmp_path):
    (tmp_path / "chatsh").mkdir()
    settings = tmp_path / "chatsh" / "config.toml"
    settings.write_text('user = "alice"\nport = \ncolour = true\n')
    term = term_factory("--host", "127.0.0.1", "--port", str(server.port),
                        cols=len(f"{settings}, line 2: "),
                        env_extra={"XDG_CONFIG_HOME": str(tmp_path)})
    term.wait_text("Successfully logged in as alice!")  # the file's user counts
    for problem in (f"{settings}, line 2: Invalid value (at column 8); skipped",
                    f"{settings}, line 3: unknown setting 'colour' (did you mean 'color'?)"):
        assert problem in term.flowed_text  # one line each, wrapped by the terminal


@pytest.mark.parametrize(("text", "args"), [
    ('hots = "chat.example.org"\nuser = "alice"\n', ()),
    ('host = chat.example.org\nport = 6000\n', ()),
    ('host = "\n', ()),
    ('hots = "chat.example.org"\n', ("--port", "6000")),
])
def test_a_settings_file_with_problems_never_starts_the_private_server(term_factory,
                                                                      tmp_path, text, args):
    """A file whose host is misspelt, or that cannot be read, never lands you alone on
    a private server (nor on 127.0.0.1, --port given or not): chatsh names the problems,
    says it has no host and exits with status 2."""
    (tmp_path / "chatsh").mkdir()
    settings = tmp_path / "chatsh" / "config.toml"
    settings.write_text(text)
    term = term_factory(*args, env_extra={"XDG_CONFIG_HOME": str(tmp_path)}, cols=400)
    assert term.exit_status() == 2
    screen = term.screen_text
    assert f"{settings}" in screen and "chatsh: no host to connect to" in screen
    assert "login:" not in screen and "Traceback" not in screen


def test_the_environment_wins_over_the_settings_file(server, term_factory, tmp_path):
    (tmp_path / "chatsh").mkdir()
    (tmp_path / "chatsh" / "config.toml").write_text(
        'host = "file.invalid"\nport = 1\nuser = "alice"\n')
    term = term_factory(env_extra={"XDG_CONFIG_HOME": str(tmp_path), "CHATSH_HOST": "127.0.0.1",
                                   "CHATSH_PORT": str(server.port)})
    term.wait_text("Successfully logged in as alice!")  # the file's other settings count


def test_each_sender_is_drawn_in_a_colour_of_their_own(server, term_factory):
    bob, term = peer_and_shell(server, term_factory, "bob", "alice")
    carol = RawClient(server.port)
    assert carol.login("carol") == b"HELLO carol"
    bob.write(b"SEND alice one\n")
    carol.write(b"SEND alice two\n")
    bob.write(b"SEND alice three\n")
    term.wait_text("From bob: three")

    def colour(text: str) -> str:
        row = next(y for y, line in enumerate(term.lines) if line.startswith(text))
        return term.screen.buffer[row][len("From ")].fg

    assert colour("From bob: one") == colour("From bob: three") != "default"
    assert colour("From carol: two") not in (colour("From bob: one"), "default")
    bob.close()
    carol.close()


def test_a_message_to_several_names_goes_to_each_and_names_who_failed(server, term_factory):
    """``@bob,zed,carol``: one SEND each, in order; the failure says whom it was for, in
    a dim name after the exact RI9 text; "The message was sent successfully" is dim too,
    as time stamps are."""
    bob, term = peer_and_shell(server, term_factory, "bob", "alice")
    carol = RawClient(server.port)
    assert carol.login("carol") == b"HELLO carol"
    term.enter("@bob,zed,carol hello all")
    assert bob.read_line() == b"DELIVERY alice hello all"
    assert carol.read_line() == b"DELIVERY alice hello all"
    failed = "The destination user does not exist (@zed)"
    term.wait_text(failed)
    term.wait_for(lambda screen: screen.count("The message was sent successfully") == 2,
                  what="two sent")

    def colour(text: str, column: int) -> str:
        row = next(y for y, line in enumerate(term.lines) if line.startswith(text))
        return term.screen.buffer[row][column].fg

    assert colour(failed, 0) not in ("default", "brightblack")
    assert colour(failed, failed.index("(@zed)")) == "brightblack"
    assert colour("The message was sent successfully", 0) == "brightblack"
    bob.close()
    carol.close()


def test_tab_on_an_empty_line_answers_whoever_wrote_last(server, term_factory):
    bob, term = peer_and_shell(server, term_factory, "bob", "alice")
    bob.write(b"SEND alice are you there\n")
    assert bob.read_line() == b"SEND-OK"
    term.wait_text("From bob: are you there")
    term.type("\t")
    term.wait_text("alice> @bob")
    term.type("yes\r")
    assert bob.read_line() == b"DELIVERY alice yes"
    bob.close()


def test_a_completion_on_a_dumb_terminal_shows_what_is_sent(server, term_factory):
    term = term_factory("--port", str(server.port), env_extra={"TERM": "dumb"})
    log_in(term, "alice")
    term.type("!w\t")
    term.wait_text("alice> !who")
    term.type("\r")
    term.wait_text("There are 2 online users:")


def test_the_toolbar_stays_drawn_after_messages_are_printed(server, term_factory):
    """In a terminal that answers cursor position requests, as real ones do: printing
    a message erases the prompt, and the toolbar must come back with it."""
    bob = RawClient(server.port)
    assert bob.login("bob") == b"HELLO bob"
    term = term_factory("--port", str(server.port), "--user", "alice",
                        env_extra={"PROMPT_TOOLKIT_NO_CPR": "0"})
    term.wait_text("| alice | 3 online | connected |")
    bob.write(b"SEND alice hello there\n")
    term.wait_text("From bob: hello there")
    term.wait_text(" unread: bob 1 | ")
    term.wait_text("| alice | 3 online | connected |")
    bob.close()


def test_bad_destination(server, term_factory):
    """RI9."""
    term = term_factory("--port", str(server.port))
    log_in(term, "alice")
    term.enter("@nobody are you there")
    term.wait_text("The destination user does not exist")


def test_name_in_use_then_retry_without_restart(server, term_factory):
    """RI4, RA2, RA4: the welcome line is not repeated, only the prompt."""
    holder = RawClient(server.port)
    assert holder.login("bob") == b"HELLO bob"
    term = term_factory("--port", str(server.port))
    term.wait_text("login:")
    term.enter("bob")
    term.wait_text("Cannot log in as bob. That username is already in use.")
    log_in(term, "bobby")
    assert term.screen_text.count(WELCOME) == 1
    holder.close()


def test_a_taken_name_from_the_command_line_asks_plainly_for_another(server, term_factory):
    """After a refusal the prompt says a new name is asked for: a chat line typed there
    by habit is taken as a name, and the prompt must not look like the chat prompt."""
    holder = RawClient(server.port)
    assert holder.login("bob") == b"HELLO bob"
    term = term_factory("--port", str(server.port), "--user", "bob")
    term.wait_text("Cannot log in as bob. That username is already in use.")
    term.wait_text("another name:")
    term.enter("@alice hi")
    term.wait_text("Cannot log in as @alice hi. That username contains disallowed characters.")
    log_in(term, "bobby")
    holder.close()


def test_user_quit_from_the_command_line_is_a_name_refused(server, term_factory):
    """--user '!quit' (or user = "!quit" in the settings file) is a name: it left at once,
    with no welcome line and '(1 more incoming lines were not shown.)'."""
    term = term_factory("--port", str(server.port), "--user", "!quit")
    term.wait_text("Cannot log in as !quit. That username contains disallowed characters.")
    term.wait_text("another name:")
    assert WELCOME in term.screen_text
    log_in(term, "quitter")


@pytest.mark.parametrize(("name", "why"), [
    ("!who", "'!' is not allowed in a name."), ("@bob", "'@' is not allowed in a name."),
    ("bad,name", "',' is not allowed in a name."), ("a*b", "'*' is not allowed in a name."),
    ("#a b#,c", "'#', a space and ',' are not allowed in a name."),
    ("x" * 65, "A name can have at most 64 characters."),
])
def test_disallowed_name_then_retry(server, term_factory, name, why):
    """RI5 exactly, then which characters the rules forbid; RA5."""
    term = term_factory("--port", str(server.port))
    term.wait_text("login:")
    term.enter(name)
    ri5 = f"Cannot log in as {name}. That username contains disallowed characters."
    term.wait_text(why)
    assert term.flowed_text.split(ri5)[1].split()[:3] == why.split()[:3]  # the line after
    log_in(term, "carol")


@pytest.mark.parametrize(("refusal", "shown"), [
    (b"BAD-RQST-BODY\n", "That username contains disallowed characters."),
    (b"IN-USE", "That username is already in use."),  # the close cut its newline short
])
def test_server_refuses_and_closes_then_a_retry_on_a_new_connection(
        scripted, term_factory, refusal, shown):
    """RI4/RI5 when the server answers and closes, the last line perhaps cut short."""
    term = term_factory("--port", str(scripted.port))
    term.wait_text("login:")
    term.enter("dave")
    scripted.accept(greet=False)
    scripted.send(refusal)
    scripted.conn.close()
    term.wait_text(f"Cannot log in as dave. {shown}")
    assert "lost" not in term.screen_text and "allowed in a name" not in term.screen_text
    term.enter("dave2")
    assert scripted.accept() == "dave2"
    term.wait_text("Successfully logged in as dave2!")


def test_server_full_exits_by_itself(server_factory, term_factory):
    """RI6, RA6: exit status 1, no traceback."""
    server = server_factory(max_clients=1)
    holder = RawClient(server.port)
    assert holder.login("x") == b"HELLO x"
    term = term_factory("--port", str(server.port))
    term.wait_text("login:")
    term.enter("erin")
    term.wait_text("Cannot log in. The server is full!")
    assert term.exit_status() == 1
    assert b"Traceback" not in term.raw


@pytest.mark.parametrize("keys", ["!quit\r", "\x04"])
def test_leaving_at_the_login_prompt(server, term_factory, keys):
    """RA8, RC1: !quit and Ctrl-D at the login prompt exit 0."""
    term = term_factory("--port", str(server.port))
    term.wait_text("login:")
    term.type(keys)
    assert term.exit_status() == 0


@pytest.mark.parametrize("keys", ["!quit\r", "\x04"])
def test_leaving_after_login(server, term_factory, keys):
    term = term_factory("--port", str(server.port))
    log_in(term, "fay")
    term.type(keys)
    assert term.exit_status() == 0


HOW_TO_LEAVE = "To leave, type !quit or press Ctrl-D."


def test_ctrl_c_never_leaves_and_says_how_to(server, term_factory):
    """SPEC §2: Ctrl-C on an empty line, at the login prompt and after, however often it
    is pressed, says how to leave and ends nothing."""
    term = term_factory("--port", str(server.port))
    term.wait_text("login:")
    for _ in range(3):
        term.type("\x03")
    term.wait_for(lambda screen: screen.count(HOW_TO_LEAVE) == 3, what="three hints")
    log_in(term, "kim")
    for _ in range(3):
        term.type("\x03")
    term.wait_for(lambda screen: screen.count(HOW_TO_LEAVE) == 6, what="three more hints")
    term.child.kill(signal.SIGINT)  # as from kill -INT: the same as the key
    term.wait_for(lambda screen: screen.count(HOW_TO_LEAVE) == 7, what="a hint for SIGINT")
    term.enter("@echobot still here")
    term.wait_text("From echobot: still here")
    term.type("\x04")
    assert term.exit_status() == 0


def flood(server: ScriptedServer, count: int) -> None:
    """DELIVERY lines as fast as the client takes them, from another thread."""
    data = b"".join(b"DELIVERY bob flood line %d of the test\n" % i for i in range(count))

    def send() -> None:
        with contextlib.suppress(OSError):  # the client may leave before the end
            server.send(data)

    threading.Thread(target=send, daemon=True).start()


@pytest.mark.parametrize("keys", ["!quit\r", "\x04"])
def test_every_way_out_works_at_once_during_a_flood(scripted, term_factory, keys):
    """Printing used to switch the terminal to cooked mode, where the terminal took a
    Ctrl-D as end of file and it never reached the prompt; leaving also waited until
    the whole backlog was printed."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    flood(scripted, 300_000)
    term.skip_until(b"flood line 2000 ")
    term.type(keys)
    assert term.exit_status(timeout=5, draw=False) == 0


@pytest.mark.parametrize("keys", ["!quit\r", "\x04"])
def test_leaving_while_a_long_paste_is_stuck_on_its_way(scripted, term_factory, keys):
    """12 MiB to a server that stopped reading: leaving does not wait for it."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    term.type("@bob ")
    term.child.send(b"\x1b[200~" + b"x" * (12 << 20) + b"\x1b[201~")
    term.wait_text("[paste #1: 12582912 characters]")
    term.enter()
    term.wait_text("me>")
    start = time.monotonic()
    term.type(keys)
    assert term.exit_status(timeout=5) == 0
    assert time.monotonic() - start < 1.5


def memory_kib(pid: int, field: str) -> int:
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M)[1])


def test_a_terminal_nobody_reads_bounds_what_the_shell_holds(scripted, term_factory):
    """Unknown lines of control characters (a fragment per escape, 3 KiB a line in
    memory) into a terminal that is not read: the shell stops reading the server and
    stays under its idle size + 64 MiB (it took 460 MiB when its bound counted
    characters, and a read's lines were gathered without one)."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    term.pump(0.2)
    idle = memory_kib(term.child.pid, "VmRSS")
    sent = [0]

    def send() -> None:
        data = b"Z" + b"\x1b\x07" * 8 + b"\n"
        with contextlib.suppress(OSError):
            for _ in range(2048):  # 32 MiB
                scripted.conn.sendall(data * 1000)
                sent[0] += 1

    threading.Thread(target=send, daemon=True).start()
    deadline = time.monotonic() + 30
    last, since = -1, time.monotonic()
    while sent[0] < 2048 and time.monotonic() - since < 2.0:  # until the shell stops reading
        assert time.monotonic() < deadline
        if sent[0] != last:
            last, since = sent[0], time.monotonic()
        time.sleep(0.05)
    growth = memory_kib(term.child.pid, "VmHWM") - idle
    assert sent[0] < 2048, "the shell read all of it"
    assert growth < 64 * 1024, f"{growth >> 10} MiB above idle"


def typed_then_cleared(server, term_factory, name: str, text: str) -> Terminal:
    """A logged-in shell where ``text`` was typed and then cleared with Ctrl-C."""
    term = term_factory("--port", str(server.port))
    log_in(term, name)
    term.type(text)
    term.wait_text(f"{name}> {text}")
    term.type("\x03")
    term.wait_for(lambda s: text not in s, what="line cleared")
    return term


def test_ctrl_c_with_text_clears_the_line(server, term_factory):
    term = typed_then_cleared(server, term_factory, "gus", "@echobot never sent")
    term.enter("@echobot still here")
    term.wait_text("From echobot: still here")
    assert "never sent" not in term.screen_text


def test_what_ctrl_c_cleared_comes_back_with_ctrl_y(server, term_factory):
    term = typed_then_cleared(server, term_factory, "hal", "@echobot half a thought")
    term.type("\x19")  # Ctrl-Y
    term.wait_text("hal> @echobot half a thought")
    term.enter()
    term.wait_text("From echobot: half a thought")


def test_incoming_message_does_not_break_the_input_line(scripted, term_factory):
    """RT6: the message appears above the half-typed line, which stays intact."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    term.type("@bob half typed")
    term.wait_text("me> @bob half typed")
    scripted.send(b"DELIVERY bob interrupting you\n")
    term.wait_text("From bob: interrupting you")
    term.wait_for(lambda _: term.input_line() == "me> @bob half typed", what="prompt redrawn")
    lines = term.lines
    assert lines.index("From bob: interrupting you") < lines.index("me> @bob half typed")
    term.enter(" and finished")
    assert scripted.read_line() == b"SEND bob half typed and finished"


def test_split_delivery_is_printed_once_whole(scripted, term_factory):
    """RT3, RT5: nothing of a line shows before its last byte, then it shows at once."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    pieces = [b"DELIV", b"ERY bo", b"b pieces of ", b"one line"]
    for piece in pieces:
        scripted.send(piece)
        deadline = time.monotonic() + 0.25
        while time.monotonic() < deadline:
            term.pump()
        assert "pieces" not in term.screen_text
    scripted.send(b" end\n")
    term.wait_text("From bob: pieces of one line end")
    assert term.screen_text.count("pieces of one line") == 1


def test_message_of_several_megabytes(scripted, term_factory):
    """RT4: a 3 MB body arrives whole (its end is on screen) and chatsh goes on."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    body = "x" * (3 * 1024 * 1024) + "THE-END"
    scripted.send(f"DELIVERY bob {body}\n".encode())
    term.skip_until(b"xxxxTHE-END", timeout=30)
    term.enter("@bob still alive")
    assert scripted.read_line() == b"SEND bob still alive"


@pytest.mark.parametrize("line, shown", [
    (b"BAD-RQST-HDR\n", "Error: Unknown issue in previous message header."),
    (b"BAD-RQST-BODY\n", "Error: Unknown issue in previous message body."),
    (b"FROBNICATE 42\n", "FROBNICATE 42"),
])
def test_error_and_unknown_lines_at_any_time(scripted, term_factory, line, shown):
    """RI12, RI13, RT7: unpaired errors and unknown headers are shown, no crash."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    scripted.send(line)
    term.wait_text(shown)
    term.enter("@bob ok")
    assert scripted.read_line() == b"SEND bob ok"
    scripted.send(b"SEND-OK\n")
    term.wait_text("The message was sent successfully")


def test_error_reply_to_a_send(scripted, term_factory):
    """RI13 after a request: BAD-RQST-BODY answers the oldest waiting request."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    term.enter("@bob one")
    assert scripted.read_line() == b"SEND bob one"
    scripted.send(b"BAD-RQST-BODY\n")
    term.wait_text("Error: Unknown issue in previous message body.")


def test_connection_lost(scripted, term_factory):
    """The server going away with --no-reconnect: one line, non-zero exit, no traceback."""
    term = term_factory("--port", str(scripted.port), "--no-reconnect")
    scripted_login(term, scripted)
    scripted.conn.close()
    term.wait_text("Connection to the server was lost.")
    assert term.exit_status() == 3
    assert b"Traceback" not in term.raw


def test_nothing_listening(term_factory):
    import socket
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    term = term_factory("--port", str(port))
    term.wait_text("login:")
    term.enter("hal")
    term.wait_text(f"127.0.0.1:{port}")
    assert term.exit_status() == 2
    assert b"Traceback" not in term.raw


def paste(term: Terminal, text: str) -> None:
    term.type("\x1b[200~" + text + "\x1b[201~")


def test_pasted_lines_after_an_address_each_go_to_it(scripted, term_factory):
    """SPEC §2: every pasted line goes to the name the first line started with, in order,
    as in !to mode (a line with its own @name or a !command is its own); a raw protocol
    word never becomes a request of its own."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    term.type("@bob ")
    paste(term, "first\nLIST\n\n!who\n@carol third\n  fourth")
    term.enter()
    for line in (b"SEND bob first", b"SEND bob LIST", b"LIST", b"SEND carol third",
                 b"SEND bob   fourth"):
        assert scripted.read_line() == line
    paste(term, "@bob,carol hi\nthere")
    term.enter()
    for line in (b"SEND bob hi", b"SEND carol hi", b"SEND bob there", b"SEND carol there"):
        assert scripted.read_line() == line
    paste(term, "@dave\nonly the lines below\ngo to dave")
    term.enter()
    for line in (b"SEND dave only the lines below", b"SEND dave go to dave"):
        assert scripted.read_line() == line


def test_a_paste_of_more_than_five_lines_asks_first(scripted, term_factory):
    """As irssi and WeeChat do: No (or Ctrl-C) sends nothing and gives the paste back as
    the draft; yes sends every line, in order."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    lines = [f"line {n}" for n in range(1, 7)]
    term.type("@bob ")
    paste(term, "\n".join(lines))
    term.enter()
    term.wait_text("Send these 6 lines to bob? (y/N)")
    term.enter("n")
    term.wait_for(lambda screen: screen.rstrip().endswith("line 6"), what="the draft back")
    term.type("\x03")  # cleared (Ctrl-Y would bring it back)
    term.enter("@bob after no")
    assert scripted.read_line() == b"SEND bob after no"  # nothing of the paste went
    term.type("@bob ")
    paste(term, "\n".join(lines))
    term.enter()
    term.wait_for(lambda screen: screen.count("Send these 6 lines to bob? (y/N)") == 2,
                  what="asked again")
    term.type("\x03")
    term.wait_for(lambda screen: screen.rstrip().endswith("line 6"), what="the draft back")
    term.enter()
    term.wait_for(lambda screen: screen.count("Send these 6 lines to bob? (y/N)") == 3,
                  what="asked a third time")
    term.enter("y")
    for line in lines:
        assert scripted.read_line() == f"SEND bob {line}".encode()


def test_a_long_paste_shows_as_a_marker_and_is_sent_whole(scripted, term_factory):
    """2 MiB pasted after "@bob ": a marker in the line, the text sent as pasted, soon.

    (Before, taking in the paste cost the square of its length: 10 s for 2 MiB.)"""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    body = "".join(f"{i:07d} ünï " for i in range(2 << 20 >> 4))
    term.type("@bob ")
    term.wait_text("me> @bob")
    term.child.send(("\x1b[200~" + body + "\x1b[201~").encode())
    term.wait_text(f"me> @bob [paste #1: {len(body)} characters]")
    term.type(" and more")
    term.enter()
    assert scripted.read_line() == f"SEND bob {body} and more".encode()
    term.type("@bob typed [paste #1: 12 characters]")
    term.enter()
    assert scripted.read_line() == b"SEND bob typed [paste #1: 12 characters]"


def test_a_long_paste_recalled_from_history_sends_its_text(scripted, term_factory, tmp_path):
    """Up brings back the paste behind a marker, in this session and the next; the
    history file holds the text that was sent, never the marker."""
    body = "".join(f"{index:05d} " for index in range(3400))
    sent = f"SEND bob {body}".encode()
    term = term_factory("--port", str(scripted.port),
                        env_extra={"XDG_STATE_HOME": str(tmp_path)})
    scripted_login(term, scripted)
    term.type("@bob ")
    term.wait_text("me> @bob")
    term.child.send(("\x1b[200~" + body + "\x1b[201~").encode())
    term.wait_text(f"me> @bob [paste #1: {len(body)} characters]")
    term.enter()
    assert scripted.read_line() == sent
    term.type("\x1b[A")  # Up
    term.wait_text(f"me> @bob [paste #1: {len(body)} characters]")
    term.enter()
    assert scripted.read_line() == sent
    term.enter("!quit")
    assert term.exit_status() == 0
    history = (tmp_path / "chatsh" / "history").read_text()
    assert f"+@bob {body}\n" in history and "[paste #" not in history
    again = term_factory("--port", str(scripted.port), "--user", "me",
                         env_extra={"XDG_STATE_HOME": str(tmp_path)})
    scripted.accept()
    assert scripted.read_line() == b"LIST"
    scripted.send(b"LIST-OK echobot,me\n")
    again.wait_text("Successfully logged in as me!")
    again.type("\x1b[A\x1b[A")  # before !quit
    again.wait_text(f"me> @bob [paste #1: {len(body)} characters]")
    again.enter()
    assert scripted.read_line() == sent


def test_hostile_escapes_are_shown_not_executed(scripted, term_factory):
    """ESC[2J, OSC title and OSC 52, CR, BS, 8-bit CSI and RLO do nothing."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    scripted.send(b"DELIVERY bob earlier line stays\n")
    term.wait_text("From bob: earlier line stays")
    payload = ("\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]52;c;aGk=\x07over\rX\x08\x08"
               "\x9b31m\u202eevil").encode()
    scripted.send(b"DELIVERY bob " + payload + b"\n")
    term.wait_text("evil")
    screen = term.screen_text
    assert "From bob: earlier line stays" in screen
    assert "^[[2J^[[H^[]0;pwned^G^[]52;c;aGk=^Gover^MX^H^H<9b>31m<U+202E>evil" in screen
    assert title_is_ours(term), term.screen.title


@pytest.mark.parametrize("line, shown", [
    (b"DELIVERY \x1b]0;sender\x07\x1b[2Jbob hi\n", "From ^[]0;sender^G^[[2Jbob: hi"),
    (b"ZAP \x1b]0;unknown\x07\x1b[2J\xc2\x9b1m\n", "ZAP ^[]0;unknown^G^[[2J<9b>1m"),
    (b"LIST-OK echobot,\x1b]0;lister\x07me\n", "^[]0;lister^Gme"),
])
def test_escapes_in_names_and_unknown_lines_are_shown_not_executed(
        scripted, term_factory, line, shown):
    """Every path from the network to the screen escapes: senders, unknown lines, lists."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    scripted.send(b"DELIVERY bob earlier line stays\n")
    term.wait_text("From bob: earlier line stays")
    term.enter("!who")
    assert scripted.read_line() == b"LIST"
    scripted.send(line)
    term.wait_text(shown)
    assert "From bob: earlier line stays" in term.screen_text
    assert title_is_ours(term), term.screen.title


def test_tab_completes_a_name_from_who(server, term_factory):
    """!who, then @zel + Tab, then Enter sends to zelda."""
    zelda, term = peer_and_shell(server, term_factory, "zelda", "ike")
    term.enter("!who")
    term.wait_text("There are 3 online users:")
    term.type("@zel\t")
    term.wait_text("ike> @zelda")
    term.type("hello from tab")
    term.wait_text("ike> @zelda hello from tab")
    term.enter()
    assert zelda.read_line() == b"DELIVERY ike hello from tab"


def test_embedded_server_when_no_host_is_given(term_factory):
    term = term_factory()
    term.wait_text(WELCOME)
    assert term.lines[0] == WELCOME
    log_in(term, "solo")
    term.enter("@echobot anyone home")
    term.wait_text("From echobot: anyone home")


def test_timestamps_and_mentions(scripted, term_factory):
    term = term_factory("--port", str(scripted.port), "--timestamps", "%H:%M")
    scripted_login(term, scripted)
    scripted.send(b"DELIVERY bob hey ME, look\n")
    term.wait_for(lambda s: any(line.endswith("From bob: hey ME, look") and line.startswith("[")
                                for line in s.splitlines()), what="stamped line")
    line = next(row for row in term.lines if row.endswith("From bob: hey ME, look"))
    assert line[0] == "[" and line[3] == ":" and line[6:8] == "] "
    row = term.lines.index(line)
    body_cell = term.screen.buffer[row][line.index("hey")]
    assert body_cell.bold, "a message naming me is highlighted"
    term.enter("@bob my own line")
    assert scripted.read_line() == b"SEND bob my own line"
    term.wait_for(lambda s: re.search(r"^\[\d\d:\d\d\] me> @bob my own line$", s, re.M),
                  what="my own line stamped")


def test_control_characters_in_user_list_are_escaped(scripted, term_factory):
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted, users="echobot,\x1b[2Jevil\x07")
    term.enter("!who")
    assert scripted.read_line() == b"LIST"
    scripted.send(b"LIST-OK echobot,\x1b]0;title\x07name,me\n")
    term.wait_text("^[]0;title^Gname")
    assert "Welcome to Chat Client" in term.screen_text
    assert title_is_ours(term), term.screen.title


def prompt(term: Terminal) -> str:
    """The last prompt line on screen (a completion menu may be drawn below it)."""
    return next((line for line in reversed(term.lines) if line.startswith("ann> ")), "")


def test_tab_cycles_through_matches_recent_first(server, term_factory):
    """Tab inserts the best match at once; Tab again moves on; recent contacts lead."""
    others = [RawClient(server.port) for _ in range(2)]
    assert others[0].login("zack") == b"HELLO zack"
    assert others[1].login("zelda") == b"HELLO zelda"
    term = term_factory("--port", str(server.port))
    log_in(term, "ann")
    term.enter("!who")
    term.wait_text("There are 4 online users:")
    term.type("@z\t")
    term.wait_for(lambda _: prompt(term) == "ann> @zack", what="first match")
    term.type("\t")
    term.wait_for(lambda _: prompt(term) == "ann> @zelda", what="second match")
    term.type("\x03")
    term.enter("@zelda hi")
    term.wait_text("The message was sent successfully")
    term.type("@z\t")
    term.wait_for(lambda _: prompt(term) == "ann> @zelda", what="recent first")


def test_login_name_stays_out_of_the_history(server, term_factory, tmp_path):
    term = term_factory("--port", str(server.port), env_extra={"XDG_STATE_HOME": str(tmp_path)})
    term.wait_text("login:")
    term.enter("taken!")
    term.wait_text("That username contains disallowed characters.")
    log_in(term, "secretname")
    term.enter("@echobot remembered")
    term.wait_text("From echobot: remembered")
    term.enter("!quit")
    assert term.exit_status() == 0
    history = (tmp_path / "chatsh" / "history").read_text()
    assert "@echobot remembered" in history
    assert "secretname" not in history and "taken!" not in history


def test_reconnect_survives_a_server_restart(term_factory):
    """The shell reconnects by default: a lost server never drops you to your login shell."""
    from chatsh.embedded import EmbeddedServer

    first = EmbeddedServer().start()
    port = first.port
    term = term_factory("--port", str(port))
    log_in(term, "phoenix")
    first.stop()
    term.wait_text("Connection to the server was lost.")
    term.enter("@echobot while away")
    term.wait_text("Not sent: not connected (reconnecting, attempt")
    second = EmbeddedServer(port=port).start()
    try:
        term.wait_for(lambda s: s.count("Successfully logged in as phoenix!") == 2,
                      what="logged in again")
        term.enter("@echobot back again")
        term.wait_text("From echobot: back again")
        assert "while away" not in second_messages(term)
        assert term.screen_text.count("Connection to the server was lost.") == 1
        term.enter("!quit")
        assert term.exit_status() == 0
    finally:
        second.stop()


def test_a_refused_login_again_is_said_once(scripted, term_factory):
    """The server still holds the lost session's name (it has not seen the connection
    die): each try got IN-USE and the shell retried for good with only 'reconnecting,
    attempt N' in the toolbar, never saying why. Now the reason is one line, once."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    scripted.conn.close()
    term.wait_text("Connection to the server was lost.")
    for _ in range(2):
        scripted.accept(greet=False)
        scripted.send(b"IN-USE\n")
        scripted.conn.close()
    said = ("Logging in again as me: the server still has me logged in (the lost connection "
            "may not have ended there yet); trying again.")
    term.wait_for(lambda _: said in term.flowed_text, what="why, in a line")
    scripted.accept()
    assert scripted.read_line() == b"LIST"
    scripted.send(b"LIST-OK echobot,me\n")
    term.wait_for(lambda s: s.count("Successfully logged in as me!") == 2, what="back in")
    assert term.screen_text.count("Logging in again as me") == 1


def second_messages(term: Terminal) -> str:
    """What the screen shows after the second login."""
    screen = term.screen_text
    return screen[screen.rindex("Successfully logged in as phoenix!"):]


@pytest.mark.parametrize("how", ["--no-reconnect", "reconnect = false"])
def test_without_reconnect_a_lost_server_ends_the_shell(term_factory, tmp_path, how):
    """--no-reconnect, or the settings file, gives the old exit (status 3); a flag wins
    over the file."""
    from chatsh.embedded import EmbeddedServer

    (tmp_path / "chatsh").mkdir()
    (tmp_path / "chatsh" / "config.toml").write_text("" if how.startswith("--") else how)
    server = EmbeddedServer().start()
    try:
        term = term_factory("--port", str(server.port), *([how] if how.startswith("--") else []),
                            env_extra={"XDG_CONFIG_HOME": str(tmp_path)})
        log_in(term, "mortal")
    finally:
        server.stop()
    term.wait_text("Connection to the server was lost.")
    assert term.exit_status() == 3
    assert b"Traceback" not in term.raw


def test_to_a_name_nobody_has_seen_asks_first(server, term_factory):
    """A typo in !to would send every later line into the void: a name neither listed
    nor heard from asks first; a known one does not."""
    term = term_factory("--port", str(server.port))
    log_in(term, "alice")
    term.enter("@zed are you there?")  # written to is not seen: zed does not exist
    term.wait_text("The destination user does not exist")
    term.enter("!to zed")
    term.wait_text("Nobody called zed has been seen here; talk to zed anyway? (y/N)")
    term.enter()
    term.wait_for(lambda screen: screen.rstrip().endswith("alice>"), what="no partner")
    assert "go to zed" not in term.screen_text
    term.enter("!to zed")
    term.wait_for(lambda screen: screen.count("talk to zed anyway?") == 2, what="asked again")
    term.enter("y")
    term.wait_text("Lines without @ go to zed now; !to alone stops.")
    term.enter("!to echobot")
    term.wait_text("Lines without @ go to echobot now; !to alone stops.")
    assert term.screen_text.count("anyway?") == 2


def test_a_chat_line_typed_as_the_answer_to_to_comes_back(server, term_factory):
    """'!to zed' and at once 'hi zed, long time' by habit: the line was taken for the
    answer (a no) and lost. Now it comes back as the draft; a plain 'n' does not."""
    term = term_factory("--port", str(server.port))
    log_in(term, "alice")
    term.enter("!to zed")
    term.wait_text("talk to zed anyway? (y/N)")
    term.enter("hi zed, long time")
    term.wait_for(lambda screen: screen.rstrip().endswith("alice> hi zed, long time"),
                  what="the line back as the draft")
    term.type("\x15")  # Ctrl-U: the draft goes
    term.enter("!to zed")
    term.wait_for(lambda screen: screen.count("talk to zed anyway?") == 2, what="asked again")
    term.enter("n")
    term.wait_for(lambda screen: screen.rstrip().endswith("alice>"), what="no draft")


def test_to_a_name_a_message_reached_asks_nothing(server, term_factory):
    """A SEND-OK says its destination is online: bob, who logged in after the shell's
    user list, was asked about ('Nobody called bob has been seen here') though he had
    just taken a message, and a line typed by habit after !to was eaten as the answer."""
    term = term_factory("--port", str(server.port), "--user", "alice",
                        env_extra={"PROMPT_TOOLKIT_NO_CPR": "0"})  # the toolbar drawn
    term.wait_text("| alice | 2 online | connected |")
    bob = RawClient(server.port)
    assert bob.login("bob") == b"HELLO bob"
    term.enter("@bob hi")
    term.wait_text("The message was sent successfully")
    term.wait_text("| alice | 3 online | connected |")
    term.enter("!to bob")
    term.wait_text("Lines without @ go to bob now; !to alone stops.")
    assert "has been seen here" not in term.screen_text
    bob.close()


def test_irc_commands_get_a_one_line_hint(server, term_factory):
    """/msg, /query, /quit and /who (irssi's, WeeChat's) say what chatsh calls them; in
    !to mode too, where they would otherwise go to the partner as text."""
    term = term_factory("--port", str(server.port), rows=30)
    log_in(term, "ian")
    for typed, form in (("/msg bob hi", "@bob hi"), ("/query bob", "!to bob"),
                        ("/quit", "!quit (or Ctrl-D)"), ("/who", "!who")):
        term.enter(typed)
        term.wait_text(f"Not a chatsh command: {form} does that here.")
    term.enter("!to echobot")
    term.enter("/quit")
    term.wait_text("(to send it to echobot: @echobot /quit)")
    term.enter("still here")
    term.wait_text("From echobot: still here")
    assert "From echobot: /quit" not in term.screen_text


def test_script_commands_are_refused_in_the_shell(server, term_factory):
    term = term_factory("--port", str(server.port))
    log_in(term, "ivo")
    term.enter("!expect something")
    term.wait_text("!expect is for scripts (--script FILE or -c LINE).")
    term.enter("!wait 1")
    term.wait_text("!wait is for scripts (--script FILE or -c LINE).")
    term.enter("@echobot still chatting")
    term.wait_text("From echobot: still chatting")


def test_history_file_that_is_a_directory_warns_once(server, term_factory, tmp_path):
    (tmp_path / "chatsh" / "history").mkdir(parents=True)
    term = term_factory("--port", str(server.port), env_extra={"XDG_STATE_HOME": str(tmp_path)})
    term.wait_text("History is kept in memory only")
    log_in(term, "nohist")
    term.enter("@echobot one")
    term.wait_text("From echobot: one")
    term.enter("!quit")
    assert term.exit_status() == 0
    assert term.screen_text.count("History is kept in memory only") == 1
    assert b"Traceback" not in term.raw and b"Press ENTER" not in term.raw


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_leaving_signals_restore_the_terminal(server, term_factory, signum, tmp_path):
    term = term_factory("--port", str(server.port), env_extra={"XDG_STATE_HOME": str(tmp_path)})
    log_in(term, "sig")
    term.enter("@echobot kept")
    term.wait_text("From echobot: kept")
    term.type("@echobot half")
    term.wait_text("sig> @echobot half")
    term.child.kill(signum)
    assert term.exit_status() == 128 + signum
    raw = bytes(term.raw)
    assert raw.rfind(b"\x1b[?2004l") > raw.rfind(b"\x1b[?2004h") >= 0  # paste mode off again
    assert b"Traceback" not in raw
    assert "@echobot kept" in (tmp_path / "chatsh" / "history").read_text()


def test_ctrl_z_suspends_to_the_shell_and_fg_resumes(server, term_factory):
    """In an interactive shell with job control, as a person runs it."""
    term = term_factory("--norc", "--noprofile", "-i", program="/bin/bash",
                        env_extra={"PS1": "shell$ "})
    term.wait_text("shell$")
    term.enter(f"{CHATSH} --port {server.port} --user zed")
    term.wait_text("Successfully logged in as zed!")
    term.type("@echobot after")
    term.wait_text("zed> @echobot after")
    term.type("\x1a")
    term.wait_text("Stopped")
    term.enter("fg")
    term.enter(" resume")
    term.wait_text("From echobot: after resume")
    assert "^Z" not in term.screen_text
    term.enter("!quit")
    term.wait_for(lambda screen: screen.rstrip().endswith("shell$"), what="back in the shell")


def test_lines_before_the_verdict_are_kept_and_a_renamed_login_is_told(scripted, term_factory):
    term = term_factory("--port", str(scripted.port))
    term.wait_text("login:")
    term.enter("alice")
    scripted.accept(greet=False)
    scripted.send(b"DELIVERY bob sent before your login\nHELLO mallory\n")
    term.wait_text("From bob: sent before your login")
    lines = term.lines
    verdict = lines.index("Successfully logged in as mallory!")
    assert lines[verdict + 1] == "The server logged you in as mallory, not as alice."
    assert lines.index("From bob: sent before your login") > verdict
    assert scripted.read_line() == b"LIST"
    scripted.send(b"LIST-OK mallory\n")
    term.enter("@bob hi")
    assert scripted.read_line() == b"SEND bob hi"
    term.wait_text("mallory> ")


def test_tab_never_inserts_invisible_characters(scripted, term_factory):
    term = term_factory("--port", str(scripted.port))
    term.wait_text("login:")
    term.enter("me")
    scripted.accept()
    assert scripted.read_line() == b"LIST"
    scripted.send("LIST-OK me,ev\u202eil,evan\u200b,eve\n".encode())
    term.wait_text("me>")
    term.type("@ev\t")
    term.wait_text("me> @eve")
    assert "evan" not in term.screen_text and "il" not in term.screen_text
    term.enter("hi")
    assert scripted.read_line() == b"SEND eve hi"
    assert b"\xe2\x80\xae" not in term.raw and b"\xe2\x80\x8b" not in term.raw


def test_ctrl_c_cancels_a_login_the_server_never_answers(scripted, term_factory):
    """Ctrl-C while the server keeps a login waiting stops waiting at once and asks for
    a name again (it never ends the shell); what the server said meanwhile is shown."""
    term = term_factory("--port", str(scripted.port))
    term.wait_text("login:")
    term.enter("waiting")
    scripted.accept(greet=False)
    scripted.send(b"PLEASE HOLD\n")
    term.wait_cooked()  # the login prompt has closed: chatsh waits for the verdict
    started = time.monotonic()
    term.type("\x03")
    term.wait_text("Login cancelled.")
    term.wait_for(lambda screen: screen.rstrip().endswith("login:"), what="asked again")
    assert time.monotonic() - started < 5, "Ctrl-C waited for the login deadline"
    assert "PLEASE HOLD" in term.screen_text
    term.enter("!quit")
    assert term.exit_status() == 0
    assert b"Traceback" not in term.raw


def test_dumb_terminal_gets_plain_lines_and_no_escape_codes(scripted, term_factory):
    term = term_factory("--port", str(scripted.port), env_extra={"TERM": "dumb"})
    scripted_login(term, scripted)
    term.type("@bob half")
    term.wait_text("me> @bob half")
    scripted.send(b"DELIVERY bob arrives while you type\n")
    term.wait_text("From bob: arrives while you type")
    term.wait_for(lambda screen: screen.rstrip().endswith("me> @bob half"), what="prompt again")
    assert "From bob: arrives while you type" in term.lines  # a line of its own
    term.enter(" done")
    assert scripted.read_line() == b"SEND bob half done"
    scripted.send(b"SEND-OK\n")
    term.wait_text("The message was sent successfully")
    assert b"\x1b" not in term.raw


def test_keys_that_mean_nothing_here_leave_the_draft_alone(scripted, term_factory):
    """Shift-PageUp (ESC[5;2~), Ctrl-F1, an unknown sequence and PageUp: nothing is typed
    into the line, and PageUp does not swap the draft for a history entry."""
    term = term_factory("--port", str(scripted.port))
    scripted_login(term, scripted)
    term.enter("@bob an earlier line")
    assert scripted.read_line() == b"SEND bob an earlier line"
    for keys in ("@bob a", "\x1b[5;2~", "b", "\x1b[1;5P", "c", "\x1b[99;9~", "d", "\x1b[5~",
                 "e"):
        term.type(keys)
    term.wait_text("me> @bob abcde")
    term.enter()
    assert scripted.read_line() == b"SEND bob abcde"


def test_help_in_the_shell_shows_its_keys_and_no_script_commands(server, term_factory):
    term = term_factory("--port", str(server.port), rows=30)
    log_in(term, "ivy")
    term.enter("!help")
    term.wait_text("Keys:")
    screen = term.screen_text
    for text in ("!who", "!to [USER]", "@<user>,<user> <message>", "Ctrl-Y brings it back",
                 "it never leaves", "more than 5 ask first"):
        assert text in screen, text
    assert "!expect" not in screen and "!wait" not in screen
