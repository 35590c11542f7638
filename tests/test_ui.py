"""Completer, lexer, history and style: the pure-ish pieces of the interface."""

import os
import re
import stat

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from pygments.token import Error, Keyword, Name, Text

from chatsh.ui.completer import ChatCompleter, Roster, rank_names
from chatsh.ui.history import chat_history, history_path
from chatsh.ui.lexer import ChatLexer
from chatsh.ui.paste import Pastes
from chatsh.ui.toolbar import CONNECTED, Status

ROSTER = Roster(names=("echobot", "zelda", "Zack", "bob", "me", "Émile", "zoë"),
                recent=("zoë", "bob"), me="me")


def complete(text, roster=ROSTER):
    completer = ChatCompleter(lambda: roster)
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(True))]


@pytest.mark.parametrize("prefix, names", [
    ("z", ["zoë", "Zack", "zelda"]),
    ("Z", ["Zack"]),
    ("ze", ["zelda"]),
    ("", ["zoë", "bob", "echobot", "Émile", "Zack", "zelda", "me"]),
    ("é", ["Émile"]),
    ("m", ["me"]),
    ("q", []),
])
def test_rank_names(prefix, names):
    assert rank_names(prefix, ROSTER) == names


def test_recent_contacts_only_when_online():
    roster = Roster(names=("a", "b"), recent=("gone", "b"), me="a")
    assert rank_names("", roster) == ["b", "a"]


def test_empty_roster():
    assert rank_names("", Roster()) == []
    assert complete("@x", Roster()) == []


def test_completion_inserts_name_and_space():
    assert complete("@zel") == ["@zelda "]
    assert complete("hi @bo") == ["@bob "]
    assert complete("plain text") == []


def test_command_completion_only_at_line_start():
    completer = ChatCompleter(lambda: ROSTER)
    found = list(completer.get_completions(Document("!wh"), CompleteEvent(True)))
    assert [c.text for c in found] == ["!who"]
    assert complete("!") == ["!who", "!help", "!quit", "!to", "!last", "!search", "!mute",
                             "!unmute", "!expect", "!wait"]
    assert found[0].display_meta_text == "list the users online"
    assert complete("@bob !w") == []


def test_the_roster_learns_from_lists_senders_and_sends():
    roster = Roster(me="me")
    roster.listed(["echobot", "a,b", "bob"])
    assert list(roster.online) == ["echobot", "bob"]
    assert roster.heard_from(["x\x1b", "carol", "bob", "carol"]) == 1
    assert list(roster.online) == ["echobot", "bob", "carol"]
    assert roster.recent[:2] == ("carol", "bob")  # the latest first
    roster.remember(["dave"])
    assert roster.recent[0] == "dave" and "dave" not in roster.online
    assert roster.heard_from(["bob"]) == 0


def test_the_toolbar_names_the_unread_senders_the_latest_first():
    status = Status("embedded", "alice", 3, CONNECTED)
    assert "unread" not in "".join(text for _, text in status.fragments())
    status.unread = {"a": 1, "b": 12, "c": 3, "d\x1b": 4}
    text = "".join(text for _, text in status.fragments())
    assert re.fullmatch(r" unread: d\^\[ 4, c 3, b 12 \+1 \| embedded \| alice \| 3 online \| "
                        r"connecting \| \d\d:\d\d \| !help ", text), text


def test_tab_on_an_empty_line_answers_the_latest_contact_first():
    roster = Roster(names=("bob", "carol", "me", "zed"), recent=("carol", "gone", "me", "bob"),
                    me="me")
    assert complete("", roster) == ["@carol ", "@bob "]
    assert complete("  ", roster) == ["@carol ", "@bob "]
    assert complete("", Roster(names=("bob",))) == []


def test_a_name_after_a_comma_completes_as_the_next_recipient():
    assert complete("@bob,ze") == ["@bob,zelda "]
    assert complete("hi @bob,zelda,é") == ["@bob,zelda,Émile "]
    assert complete("@bob,") == ["@bob,zoë ", "@bob,echobot ", "@bob,Émile ", "@bob,Zack ",
                                 "@bob,zelda ", "@bob,me "]  # bob is named already
    assert complete("@bob,zoë,Zack,zelda,echobot,Émile,me,") == []
    assert complete("@bob,,ze") == []  # an empty name never completes


def test_to_completes_a_name_without_at():
    assert complete("!to b") == [text[1:].strip() for text in complete("@b")]
    assert complete("!to b")
    assert complete("!to bob x") == []


def lex(text):
    return [(token, value.strip()) for token, value in ChatLexer().get_tokens(text)
            if value.strip()]


def test_lexer_tokens():
    assert lex("@alice hi there") == [(Name.Tag, "@alice"), (Text, "hi there")]
    assert lex("!who") == [(Keyword, "!who")]
    assert lex("!nope") == [(Error, "!nope")]
    assert lex("!whoever") == [(Error, "!whoever")]
    assert lex("just text") == [(Text, "just text")]


def test_history_under_xdg_state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert history_path() == tmp_path / "xdg" / "chatsh" / "history"
    history, warning = chat_history(True, Pastes())
    assert warning is None
    history.append_string("secret-login")
    history.recording = True
    history.append_string("@bob hi")
    text = history_path().read_text()
    assert "@bob hi" in text
    assert "secret-login" not in text


def test_history_keeps_the_text_of_a_long_paste_and_recalls_its_marker(tmp_path, monkeypatch):
    from chatsh.ui.history import MAX_ENTRY
    from chatsh.ui.paste import INLINE_LIMIT

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    pastes = Pastes()
    history, _ = chat_history(True, pastes)
    history.recording = True
    long = "p" * (INLINE_LIMIT + 1)
    marker = pastes.marker(long)
    history.append_string(f"@bob {marker}")
    assert pastes.expand(f"@bob {marker}") == f"@bob {long}"
    history.append_string(f"@bob {pastes.marker('q' * (MAX_ENTRY + 1))}")  # too long to keep
    assert history.get_strings() == [f"@bob {marker}"]  # Up shows the marker
    assert pastes.expand(history.get_strings()[0]) == f"@bob {long}"  # Enter sends the text
    text = history_path().read_text()
    assert f"+@bob {long}\n" in text and "[paste" not in text and "qqq" not in text
    later = Pastes()
    recalled = list(chat_history(True, later)[0].load_history_strings())
    assert recalled == [f"@bob [paste #1: {len(long)} characters]"]
    assert later.expand(recalled[0]) == f"@bob {long}"


def test_history_is_readable_by_its_owner_only(tmp_path, monkeypatch):
    """Every line typed is in the history, private messages too: like the transcript, it
    is created 0600 in a 0700 folder, whatever the umask, and an older one that others
    could read is made 0600."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    old_mask = os.umask(0o022)
    try:
        history, warning = chat_history(True, Pastes())
        history.recording = True
        history.append_string("@bob my secret")
        assert warning is None
        assert stat.S_IMODE(history_path().stat().st_mode) == 0o600
        assert stat.S_IMODE(history_path().parent.stat().st_mode) == 0o700
        history_path().chmod(0o644)
        chat_history(True, Pastes())
        assert stat.S_IMODE(history_path().stat().st_mode) == 0o600
    finally:
        os.umask(old_mask)


def test_history_that_is_a_fifo_is_kept_in_memory_at_once(tmp_path, monkeypatch):
    """A FIFO where the history file goes would hold the start until someone reads it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    history_path().parent.mkdir(parents=True)
    os.mkfifo(history_path())
    history, warning = chat_history(True, Pastes())
    assert warning is not None and "not a regular file" in warning
    history.recording = True
    history.append_string("@bob hi")
    assert history.get_strings() == ["@bob hi"]


def test_history_disabled_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    history, _ = chat_history(False, Pastes())
    history.recording = True
    history.append_string("@bob hi")
    assert not (tmp_path / "xdg").exists()


def test_toolbar_counts_users_from_every_list(monkeypatch):
    """A user list, asked for or not, updates the toolbar's count and the completer."""
    import asyncio

    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from chatsh import protocol as p
    from chatsh.engine import ClientEngine
    from chatsh.modes.repl import Repl, ReplOptions
    from chatsh.session import Replied, users_request

    loop = asyncio.new_event_loop()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        repl = Repl(ClientEngine("127.0.0.1", 1), ReplOptions(history=False))
        repl.display.bind(loop)
        toolbar = lambda: "".join(text for _, text in repl.state.status.fragments())  # noqa: E731
        assert "? online" in toolbar()
        repl.on_event(Replied(users_request(quiet=True)[0], p.ListOk(("echobot", "me"))))
        loop.run_until_complete(asyncio.sleep(0))
        assert "2 online" in toolbar()
        repl.on_event(p.ListOk(("echobot", "me", "zoë")))
        loop.run_until_complete(asyncio.sleep(0))
        assert "3 online" in toolbar()
        assert rank_names("z", repl.state.roster) == ["zoë"]
    loop.close()


def test_the_reader_thread_changes_no_state_itself():
    """Roster and toolbar change on the event loop only: the reader thread hands the
    change over, so nothing is lost to two threads writing at once."""
    import asyncio
    import threading

    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from chatsh import protocol as p
    from chatsh.engine import ClientEngine
    from chatsh.modes.repl import Repl, ReplOptions
    from chatsh.session import Deliveries, LoggedIn

    loop = asyncio.new_event_loop()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        repl = Repl(ClientEngine("127.0.0.1", 1), ReplOptions(history=False))
        repl.display.bind(loop)

        def reader() -> None:
            repl.on_event(LoggedIn("me", "me"))
            for index in range(300):
                repl.on_event(Deliveries([(f"s{index}", "hi")]))
                repl.on_event(p.ListOk(tuple(f"u{n}" for n in range(index + 1))))
                repl.end_batch()  # as the engine does after each read

        thread = threading.Thread(target=reader)
        thread.start()
        thread.join()
        assert repl.state.roster.recent == () and repl.state.status.online is None
        loop.run_until_complete(asyncio.sleep(0))
        # the last list (u0..u299), and the last sender, online though not in it
        assert repl.state.status.online == 301 and repl.state.status.user == "me"
        assert repl.state.roster.recent[:3] == ("s299", "s298", "s297")
        assert len(repl.state.roster.online) == 301 and "s299" in repl.state.roster.online
    loop.close()


@pytest.mark.parametrize("spoil", ["directory", "read-only"])
def test_unusable_history_file_falls_back_to_memory(tmp_path, monkeypatch, spoil):
    import os

    from prompt_toolkit.history import InMemoryHistory

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    path = history_path()
    if spoil == "directory":
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True)
        path.write_text("")
        path.chmod(0o400)
        if os.access(path, os.W_OK):
            pytest.skip("running as a user who can write a read-only file")
    history, warning = chat_history(True, Pastes())
    assert isinstance(history, InMemoryHistory)
    assert warning is not None and str(path) in warning and "memory" in warning
    history.recording = True
    history.append_string("@bob kept")
    assert list(history.load_history_strings()) == ["@bob kept"]


def test_the_prompt_never_waits_for_a_send(monkeypatch):
    """A send that blocks (a server that stopped reading) blocks the sending thread only."""
    import asyncio
    import threading
    import time

    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from chatsh.engine import ClientEngine
    from chatsh.modes.repl import Repl, ReplOptions

    release = threading.Event()
    submitted = []

    class StuckEngine(ClientEngine):
        connected = True

        def submit(self, batch):
            submitted.append(batch)
            release.wait(10)
            return [request for request, _ in batch]

    loop = asyncio.new_event_loop()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        repl = Repl(StuckEngine("127.0.0.1", 1), ReplOptions(history=False))
        repl.display.bind(loop)
        start = time.monotonic()
        for index in range(3):
            repl.run_line(f"@bob message {index}")
        returned_after = time.monotonic() - start
        deadline = time.monotonic() + 5
        while not submitted and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
    loop.close()
    assert submitted, "the sending thread never sent"
    assert returned_after < 5, "run_line waited for the stuck send"


def test_a_slow_terminal_holds_the_network_thread_at_the_backlog_bound():
    import asyncio
    import threading
    import time

    from prompt_toolkit.output import DummyOutput

    from chatsh.ui.display import Display
    from chatsh.ui.style import chat_style

    display = Display(DummyOutput(), chat_style(), None, max_backlog=1000)
    loop = asyncio.new_event_loop()
    display.bind(loop)  # bound, not running: nothing drains until the test says so
    held = threading.Event()
    done = threading.Event()

    def flood():
        for _ in range(10):
            display.show([("", "x" * 300)])
        held.set()
        display.show([("", "x" * 300)])
        done.set()

    thread = threading.Thread(target=flood)
    thread.start()
    assert not held.wait(0.5), "the backlog passed its bound"
    deadline = time.monotonic() + 5
    while not done.wait(0.01):  # each drain lets the thread go on by one bound
        assert time.monotonic() < deadline
        display.drain()
    thread.join()
    loop.close()


def test_a_send_that_fails_or_belongs_to_a_lost_connection_says_not_sent():
    import threading

    from chatsh.session import users_request
    from chatsh.ui.sender import Sender

    class BrokenEngine:
        session = object()
        sending = False

        def submit(self, batch):
            raise ConnectionError("the link broke")

    reasons: list[str] = []
    said = threading.Semaphore(0)

    def not_sent(why: str) -> None:
        reasons.append(why)
        said.release()

    engine = BrokenEngine()
    sender = Sender(engine, not_sent)  # type: ignore[arg-type]
    sender.put(users_request())
    assert said.acquire(timeout=5)
    old = engine.session
    engine.session = object()  # a new connection: a line typed for the old one stays
    sender._queue.put((old, users_request()))
    assert said.acquire(timeout=5)
    assert reasons == ["the link broke", "typed before the connection was lost"]


def test_reconnect_waits_double_are_capped_and_jittered():
    import random

    from chatsh.ui.reconnect import BACKOFF_CAP, BACKOFF_FIRST, reconnect_delay

    low, high = random.Random(), random.Random()
    low.random = lambda: 0.0  # type: ignore[method-assign]
    high.random = lambda: 1.0  # type: ignore[method-assign]
    assert reconnect_delay(0, high) == BACKOFF_FIRST
    assert reconnect_delay(0, low) == BACKOFF_FIRST / 2
    assert reconnect_delay(2, high) == 4 * BACKOFF_FIRST
    assert reconnect_delay(50, high) == BACKOFF_CAP
    assert reconnect_delay(50, low) == BACKOFF_CAP / 2
    draws = {reconnect_delay(3, random.Random(seed)) for seed in range(20)}
    assert len(draws) == 20  # every client waits its own time


def test_a_sender_is_completed_and_counted_the_moment_their_message_arrives():
    import asyncio

    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from chatsh import protocol as p
    from chatsh.engine import ClientEngine
    from chatsh.modes.repl import Repl, ReplOptions
    from chatsh.session import Deliveries

    loop = asyncio.new_event_loop()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        repl = Repl(ClientEngine("127.0.0.1", 1), ReplOptions(history=False))
        repl.display.bind(loop)
        repl.on_event(p.ListOk(("echobot", "me")))
        loop.run_until_complete(asyncio.sleep(0))
        assert rank_names("d", repl.state.roster) == []
        for sender in ("dave", "dora", "dave"):
            repl.on_event(Deliveries([(sender, "hi")]))
        repl.end_batch()
        loop.run_until_complete(asyncio.sleep(0))
        assert rank_names("d", repl.state.roster) == ["dave", "dora"]  # the latest first
        assert repl.state.status.online == 4
    loop.close()


def test_lines_look_on_screen_as_prompt_toolkit_would_draw_them():
    """The display writes each style's sequence only when the style changes, and
    without its leading reset after a reset: the screen must be the same, cell for
    cell (characters and attributes), as prompt_toolkit's own rendering."""
    import io

    import pyte
    from prompt_toolkit.data_structures import Size
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.output.vt100 import Vt100_Output
    from prompt_toolkit.renderer import print_formatted_text

    from chatsh import texts
    from chatsh.ui.deliveries import DeliveryRenderer
    from chatsh.ui.display import Display
    from chatsh.ui.style import chat_style

    lines = [texts.delivery("bob", "hi alice"), texts.delivery("carol", "alice!", True),
             texts.delivery("m\x1bx", "a\x07b\u202ec"), texts.error("Error: no."),
             texts.system("The message was sent successfully"), texts.user_list(["a", "b"])[1],
             [("class:body", "one "), ("class:body", "style"), ("", " plain")]]

    def screen_of(text: str) -> list[list[tuple[object, ...]]]:
        screen = pyte.Screen(60, len(lines) + 1)
        pyte.Stream(screen).feed(text.replace("\n", "\r\n").replace("\r\r\n", "\r\n"))
        return [[(cell.data, cell.fg, cell.bg, cell.bold, cell.italics, cell.underscore,
                  cell.reverse) for cell in (screen.buffer[row][col]
                 for col in range(60))] for row in range(len(lines))]

    def vt100(capture: io.StringIO) -> Vt100_Output:
        return Vt100_Output(capture, lambda: Size(rows=24, columns=60), term="xterm")

    ours = io.StringIO()
    Display(vt100(ours), chat_style(), None).write_now(*lines)
    flood = io.StringIO()  # the messages made into text in one pass, the rest as fragments
    screen = Display(vt100(flood), chat_style(), None)
    rendered = DeliveryRenderer(screen).render(
        [("bob", "hi alice"), ("carol", "alice!"), ("m\x1bx", "a\x07b\u202ec")], "alice",
        lambda body: body == "alice!")
    screen.write_now(rendered, *lines[3:])
    theirs = io.StringIO()
    fragments = [fragment for line in lines for fragment in (*line, ("", "\n"))]
    print_formatted_text(vt100(theirs), FormattedText(fragments), chat_style())
    assert screen_of(ours.getvalue()) == screen_of(theirs.getvalue())
    assert screen_of(flood.getvalue()) == screen_of(theirs.getvalue())
    assert any(cell[1] != "default" for row in screen_of(ours.getvalue()) for cell in row)
    assert len(ours.getvalue()) < len(theirs.getvalue())


def test_fifty_thousand_senders_cost_each_batch_only_its_own_length(monkeypatch):
    """Each batch of senders updates the unread senders, the title and the roster in time
    linear in the batch: 50,000 senders in batches of 100 took 14 s when every batch
    rebuilt the unread list (a list membership test) and the roster's tuples."""
    import asyncio
    import time

    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from chatsh.engine import ClientEngine
    from chatsh.modes.repl import Repl, ReplOptions

    monkeypatch.setenv("TERM", "xterm")  # not a dumb terminal: the title and toolbar count
    loop = asyncio.new_event_loop()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        repl = Repl(ClientEngine("127.0.0.1", 1), ReplOptions(history=False))
        repl.display.bind(loop)
        names = [f"user{index}" for index in range(50_000)]
        start = time.perf_counter()
        for first in range(0, len(names), 100):
            repl.state.heard(dict.fromkeys(names[first:first + 100], 1))
        spent = time.perf_counter() - start
        toolbar = "".join(text for _, text in repl.state.status.fragments())
        assert "unread: user49999 1, user49998 1, user49997 1 +49997" in toolbar
        roster = repl.state.roster
        assert len(roster.online) == 50_000 and roster.recent[0] == "user49999"
        repl.state.heard({"user7": 1})  # heard from again: the latest unread sender
        assert "unread: user7 2, user49999 1, user49998 1 +49997" in "".join(
            text for _, text in repl.state.status.fragments())
    loop.close()
    assert spent < 1.5, f"{spent:.1f} s for 50,000 senders"


def traced(make):
    """What ``make()`` returns, and the bytes of memory it holds once made."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        made = make()
        gc.collect()
        return made, tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("line", [
    b"DELIVERY bob m", b"DELIVERY u%07d m", b"DELIVERY bob " + b"\x1b\x07" * 8,
    b"DELIVERY bob " + "\U0001f600".encode() * 4, b"DELIVERY bob " + b"x" * 300,
    b"DELIVERY \x1bu%d " + "\u00e9".encode() * 20,
])
def test_the_backlog_counts_the_memory_a_flood_takes(line):
    """A flood's lines are bounded by what they take: 8 MiB of characters of short lines
    were 150 MiB of objects (their pairs, kept for a transcript, and their strings)."""
    from prompt_toolkit.output import DummyOutput

    from chatsh import protocol as p
    from chatsh.ui.deliveries import DeliveryRenderer
    from chatsh.ui.display import Display, Rendered, measure
    from chatsh.ui.style import chat_style

    renderer = DeliveryRenderer(Display(DummyOutput(), chat_style(), None))
    raws = [line.replace(b"%07d", b"%07d" % index).replace(b"%d", b"%d" % index)
            for index in range(4000)]  # no more senders than the renderer keeps openings of

    def rendered() -> Rendered:
        return renderer.render([p.delivery_pair(raw) for raw in raws], "me",
                               lambda body: False)

    rendered()  # each sender's opening made once, as a flood does
    made, taken = traced(rendered)
    assert taken <= measure([made])[1] <= 4 * taken


@pytest.mark.parametrize("text", ["Z", "Z" + "\x1b\x07" * 8, "\U0001f600" * 30])
def test_the_backlog_counts_the_memory_lines_of_fragments_take(text):
    """An unknown line of control characters is a fragment per escape: 3 KiB a line."""
    from chatsh import texts
    from chatsh.ui.display import measure

    lines, taken = traced(lambda: [texts.unknown_line(text + str(index))
                                   for index in range(20_000)])
    assert taken <= measure(lines)[1] <= 4 * taken


@pytest.mark.parametrize("columns, shown", [
    (200, " unread: carol 1, bob 8 | 127.0.0.1:5378 | alice | 44 online | connected | "
          "muted: zed 2 | 12:34 | !help "),
    (80, " unread: carol 1, bob 8 | 127.0.0.1:5378 | alice | 44 online | connected "),
    (60, " unread: carol 1, bob 8 | alice | 44 online | connected "),
    (40, " unread: carol 1, bob 8 | connected "),
    (30, " unread: ca… 1 +1 | connected "),  # the latest name cut, to fit
    (10, " unread: c… 1 +1 | connected "),  # one character of it kept at least
])
def test_a_narrow_toolbar_leaves_out_the_least_useful_parts_first(columns, shown,
                                                                  monkeypatch):
    monkeypatch.setattr("time.strftime", lambda fmt: "12:34")
    status = Status("127.0.0.1:5378", "alice", 44, state=CONNECTED,
                    unread={"bob": 8, "carol": 1}, muted={"zed": 2})
    assert "".join(text for _, text in status.fragments(columns)) == shown
