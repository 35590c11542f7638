"""The shell's state about people: roster, unread counts, bell and title, toolbar."""

from __future__ import annotations

import pytest
from prompt_toolkit.output import DummyOutput

from chatsh.texts import plain
from chatsh.ui.attention import BELL, POP_TITLE, PUSH_TITLE, Attention
from chatsh.ui.conversation_state import CONVERSATION, Conversations
from chatsh.ui.fold import cells
from chatsh.ui.toolbar import CONNECTED, DISCONNECTED


class Terminal(DummyOutput):
    """What the attention writes, as the terminal gets it."""

    def __init__(self) -> None:
        self.written = ""

    def write_raw(self, data: str) -> None:
        self.written += data


class Shell:
    """What the state asks of the shell: the partner, the draft, a clock; and redraws."""

    def __init__(self, bell: bool = True) -> None:
        self.partner: str | None = None
        self.draft = ""
        self.now = 1000.0
        self.redraws = 0
        self.terminal = Terminal()
        self.shown: list[str] = []
        self.state = Conversations("embedded", Attention(self.terminal, bell),
                                   lambda: self.partner, lambda: self.draft, self.redraw,
                                   lambda line: self.shown.append(plain(line)),
                                   clock=lambda: self.now)
        self.state.logged_in("alice")

    def redraw(self) -> None:
        self.redraws += 1

    def toolbar(self) -> str:
        return "".join(text for _, text in self.state.status.fragments())


def test_messages_are_counted_and_each_batch_rings_once():
    shell = Shell()
    shell.state.heard({"frank": 5, "bob": 1})
    shell.state.heard({"frank": 3})
    assert shell.state.unread == 9
    assert shell.state.status.unread == {"bob": 1, "frank": 8}  # the latest last
    assert "unread: frank 8, bob 1 |" in shell.toolbar()
    assert shell.terminal.written.count(BELL) == 2
    assert shell.terminal.written.count(PUSH_TITLE) == 1
    assert shell.terminal.written.endswith("\x1b]0;chatsh (9 unread)\x1b\\")


def test_seen_gives_the_title_back_once():
    shell = Shell()
    shell.state.seen()
    assert shell.terminal.written == ""
    shell.state.heard({"frank": 2})
    shell.state.seen()
    shell.state.seen()
    assert shell.terminal.written.count(POP_TITLE) == 1
    assert shell.state.unread == 0 and "unread" not in shell.toolbar()


def test_no_bell_still_counts_in_the_title():
    shell = Shell(bell=False)
    shell.state.heard({"frank": 2})
    assert BELL not in shell.terminal.written
    assert "chatsh (2 unread)" in shell.terminal.written


@pytest.mark.parametrize("how", ["partner", "draft", "draft alone"])
def test_who_you_are_talking_to_asks_for_no_attention(how):
    shell = Shell()
    if how == "partner":
        shell.partner = "bob"
    else:
        shell.draft = "  @bob half a line" if how == "draft" else "@bob"
    shell.state.heard({"bob": 4})
    assert shell.terminal.written == "" and shell.state.unread == 0
    shell.state.heard({"bobby": 1})  # a name that only starts alike
    assert shell.state.status.unread == {"bobby": 1}


def test_everyone_written_to_in_the_last_minute_asks_for_no_attention():
    shell = Shell()
    shell.state.wrote_to("bob")
    shell.now += 10
    shell.state.wrote_to("carol")
    shell.now += CONVERSATION - 10 - 0.001
    shell.state.heard({"bob": 1, "carol": 1})
    assert shell.state.unread == 0
    shell.now += 0.001  # a minute after writing to bob, not yet to carol
    shell.state.heard({"bob": 1, "carol": 1})
    assert shell.state.status.unread == {"bob": 1}


def test_senders_are_online_and_counted_at_once():
    shell = Shell()
    shell.state.listed(("echobot", "alice"))
    assert shell.state.status.online == 2
    shell.state.heard({"dave": 1, "echobot": 2})
    assert shell.state.status.online == 3
    assert shell.state.roster.recent[:2] == ("echobot", "dave")
    assert "dave" in shell.state.roster.online


def test_a_list_before_any_count_is_not_made_up():
    shell = Shell()
    shell.state.heard({"dave": 1})
    assert shell.state.status.online is None
    assert "? online" in shell.toolbar()


def test_a_lost_connection_forgets_how_many_are_online():
    shell = Shell()
    shell.state.listed(("echobot", "alice", "bob"))
    assert shell.state.status.state == CONNECTED and "3 online" in shell.toolbar()
    shell.state.disconnected()
    assert shell.state.state == DISCONNECTED and "? online" in shell.toolbar()
    shell.state.reconnecting(2)
    assert "reconnecting, attempt 2" in shell.toolbar()


def test_each_change_of_the_toolbar_is_redrawn():
    shell = Shell()
    before = shell.redraws
    shell.state.listed(("echobot",))
    shell.state.heard({"dave": 1})
    shell.state.seen()
    assert shell.redraws == before + 3
    shell.state.seen()  # nothing changed
    shell.state.wrote_to("dave")
    assert shell.redraws == before + 3


def test_without_the_focus_everyone_alerts_even_the_partner():
    shell = Shell()
    shell.partner = "bob"
    shell.state.wrote_to("carol")
    shell.state.focus(False)
    shell.state.heard({"bob": 1, "carol": 2})
    assert shell.state.status.unread == {"bob": 1, "carol": 2}
    shell.state.focus(True)
    shell.state.heard({"bob": 1, "carol": 1})
    assert shell.state.unread == 3


def test_a_muted_sender_is_counted_apart_and_never_alerts():
    shell = Shell()
    shell.state.mute("zed", True)
    shell.state.focus(False)
    shell.state.heard({"zed": 5})
    assert shell.terminal.written == "" and shell.state.unread == 0
    assert "muted: zed 5 |" in shell.toolbar()
    shell.state.mute("zed", False)
    assert "muted" not in shell.toolbar()
    shell.state.heard({"zed": 1})
    assert shell.state.status.unread == {"zed": 1}


def test_writing_to_someone_reads_their_messages_and_the_title_follows():
    shell = Shell()
    shell.state.heard({"bob": 2, "carol": 1})
    shell.state.wrote_to("bob")
    assert shell.state.status.unread == {"carol": 1} and shell.state.unread == 1
    assert shell.terminal.written.endswith("\x1b]0;chatsh (1 unread)\x1b\\")
    assert shell.terminal.written.count(BELL) == 1  # recounted quietly
    shell.state.wrote_to("carol")
    assert shell.state.unread == 0 and shell.terminal.written.endswith(POP_TITLE)
    shell.state.wrote_to("carol")
    assert shell.terminal.written.count(POP_TITLE) == 1


def test_a_list_says_who_you_talked_with_came_or_left_since_the_last():
    shell = Shell()
    shell.state.heard({"bob": 1})
    shell.state.wrote_to("carol")
    shell.state.listed(("alice", "bob", "dave"))
    assert shell.shown == []  # the first list: nothing to compare with
    shell.state.listed(("alice", "carol", "erin"))
    assert shell.shown == ["carol is online.", "bob went offline."]
    shell.state.listed(("alice", "carol", "erin"))
    shell.state.listed(("carol",))  # alice is the user herself; erin a stranger
    assert len(shell.shown) == 2


def test_quiet_counts_from_the_last_messages():
    shell = Shell()
    assert shell.state.quiet(1.0)
    shell.state.heard({"bob": 1})
    assert not shell.state.quiet(1.0)
    shell.now += 1.0
    assert shell.state.quiet(1.0)


def run_listing(shell: Shell, monkeypatch, steps) -> list[float]:
    """Run keep_listing every 10 ms for as long as ``steps`` (a coroutine function that
    changes the shell meanwhile) runs; when each list was asked for."""
    import asyncio
    import time

    from chatsh.ui import refresh

    monkeypatch.setattr(refresh, "QUIET", 0.01)
    asked: list[float] = []
    drawn = {"now": True}

    async def main() -> None:
        task = asyncio.ensure_future(refresh.keep_listing(
            shell.state, lambda: asked.append(time.monotonic()), lambda: drawn["now"], 0.01))
        await steps(drawn, asked)
        task.cancel()

    asyncio.run(main())
    return asked


def test_the_list_is_asked_for_again_but_never_during_a_flood_or_a_backlog(monkeypatch):
    import asyncio

    shell = Shell()
    shell.state.listed(())
    phases: dict[str, int] = {}

    async def steps(drawn, asked) -> None:
        await asyncio.sleep(0.1)
        phases["before"] = len(asked)
        shell.now += 100  # messages keep coming: the state's clock says just now
        shell.state.heard({"flooder": 1000})
        await asyncio.sleep(0.1)
        phases["flood"] = len(asked)
        shell.now += 100
        drawn["now"] = False  # quiet, but the screen has lines to draw
        await asyncio.sleep(0.1)
        phases["backlog"] = len(asked)
        drawn["now"] = True
        await asyncio.sleep(0.1)
        phases["after"] = len(asked)

    run_listing(shell, monkeypatch, steps)
    assert phases["before"] >= 2
    assert phases["flood"] == phases["backlog"] <= phases["before"] + 1
    assert phases["after"] >= phases["backlog"] + 2


def test_a_server_without_lists_is_asked_no_more(monkeypatch):
    import asyncio

    shell = Shell()
    shell.state.unlisted()

    async def steps(drawn, asked) -> None:
        await asyncio.sleep(0.1)

    assert run_listing(shell, monkeypatch, steps) == []


@pytest.mark.parametrize("name", ["n" * 64, "漢" * 32])
def test_a_long_unread_name_is_cut_so_the_connection_state_stays(name):
    """A sender whose name alone is wider than the toolbar: the name is cut, with an
    ellipsis, and the connection's state still shows, in the columns there are."""
    shell = Shell()
    shell.state.heard({"bob": 1, name: 2})
    for columns in (60, 45, 30):
        fitted = "".join(text for _, text in shell.state.status.fragments(columns))
        assert fitted.startswith(" unread: " + name[0]), fitted
        assert fitted.endswith(" 2 +1 | connected "), fitted
        assert "…" in fitted and cells(fitted) <= columns, (columns, fitted)


def test_a_terminal_that_hung_up_takes_no_alert_and_raises_nothing():
    """Every write fails (EIO) once the terminal hung up, and messages may still come
    before the shell leaves: the bell and title are lost quietly, where each message
    printed a traceback on stderr ("Exception in callback Conversations.heard")."""

    class HungUp(Terminal):
        def flush(self) -> None:
            raise OSError(5, "Input/output error")

    attention = Attention(HungUp(), bell=True)
    attention.alert(3)
    attention.recount(2)
    attention.clear()
