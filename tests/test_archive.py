"""The archive's thread: batches written off the event loop, questions answered in order,
problems said in one line, and stored text shown escaped."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

import pytest

from chatsh import texts
from chatsh.store import MessageStore, Stored
from chatsh.ui import archive as archive_module
from chatsh.ui.archive import Archive, Restored
from chatsh.ui.recall import SHOWN_LENGTH, last_lines, search_lines, stored_line

DEADLINE = 10.0


class Loop:
    """Stands for the event loop: what the archive hands over, run when asked."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()

    def call_soon(self, callback: Callable[[], object]) -> None:
        self.calls.put(callback)

    def run_one(self) -> None:
        self.calls.get(timeout=DEADLINE)()


def opened_archive(path, loop: Loop) -> tuple[Archive, list[Restored | str]]:
    archive = Archive(loop.call_soon, True)
    answers: list[Restored | str] = []
    archive.start(path, answers.append)
    loop.run_one()
    return archive, answers


def before_each_write(monkeypatch, before: Callable[[list], object]) -> None:
    """``before`` is called with each batch the store is about to write."""
    add = MessageStore.add

    def wrapped(store, batch):
        before(batch)
        add(store, batch)

    monkeypatch.setattr(MessageStore, "add", wrapped)


def ask(archive: Archive, loop: Loop, question):
    answers: list[object] = []
    archive.ask(question, answers.append)
    loop.run_one()
    return answers[0]


def test_messages_are_written_once_the_flood_pauses_in_one_transaction(tmp_path, monkeypatch):
    writes: list[int] = []
    before_each_write(monkeypatch, lambda batch: writes.append(len(batch)))
    loop = Loop()
    archive, answers = opened_archive(tmp_path / "s.sqlite3", loop)
    assert isinstance(answers[0], Restored)
    for index in range(50):
        archive.received([("bob", f"line {index}")] * 10)
    assert writes == []  # nothing yet: the flood may go on
    deadline = time.monotonic() + DEADLINE
    while not writes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writes == [50]  # once it paused, in one go
    archive.close()


def test_a_flood_that_never_pauses_is_written_all_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(archive_module, "LONGEST_WAIT", 0.2)
    writes: list[int] = []
    before_each_write(monkeypatch, lambda batch: writes.append(len(batch)))
    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    deadline = time.monotonic() + DEADLINE
    while not writes and time.monotonic() < deadline:
        archive.received([("bob", "more")])
        time.sleep(0.01)
    assert writes and writes[0] >= 2
    archive.close()


def test_a_question_sees_every_message_before_it(tmp_path):
    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    archive.received([("bob", "one"), ("bob", "two")])
    archive.sent("bob", "three")
    found = ask(archive, loop, lambda store: store.last("bob", 10))
    assert [message.body for message in found] == ["one", "two", "three"]
    archive.close()


def test_close_writes_what_waits_and_the_next_session_gets_it_back(tmp_path):
    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    archive.received([("bob", "kept")])
    archive.sent("carol", "also kept")
    archive.setting("partner", "carol")
    archive.muted("zed", True)
    archive.close()
    archive, answers = opened_archive(tmp_path / "s.sqlite3", loop)
    [remembered] = answers
    assert isinstance(remembered, Restored)
    assert remembered.recent == ["carol", "bob"] and remembered.partner == "carol"
    assert remembered.muted == ["zed"]
    archive.close()


def test_a_store_that_cannot_be_opened_says_why_and_keeps_nothing(tmp_path):
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"garbage" * 1000)
    loop = Loop()
    archive, answers = opened_archive(path, loop)
    assert isinstance(answers[0], str) and "going on without it" in answers[0]
    assert not archive.open
    archive.received([("bob", "dropped")])  # nothing queued for a thread that is gone
    answered: list[object] = []
    archive.ask(lambda store: store.last(None, 1), answered.append)
    assert answered == ["the message store is off (see above)"]
    archive.close()


def test_a_store_that_fails_later_says_so_once_and_answers_what_waits(tmp_path, monkeypatch):
    import sqlite3

    def broken(store, batch):
        raise sqlite3.OperationalError("disk I/O error")

    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    monkeypatch.setattr(MessageStore, "add", broken)
    archive.received([("bob", "lost")])
    answered: list[object] = []
    archive.ask(lambda store: store.last(None, 1), answered.append)
    loop.run_one()  # the warning...
    loop.run_one()  # ...and the answer to the question that waited
    assert answered == ["the message store is off (see above)"]
    assert not archive.open
    archive.close()


def test_stored_lines_are_escaped_and_long_bodies_cut():
    at = time.mktime((2026, 12, 7, 14, 3, 0, 0, 0, -1))
    hostile = Stored(at, "b\x1bob", False, "\x1b]0;pwned\x07 hi\u202e")
    text = texts.plain(stored_line(hostile, "alice"))
    assert text == "2026-12-07 14:03 <b^[ob> ^[]0;pwned^G hi<U+202E>"
    sent = Stored(at, "bob", True, "x" * (SHOWN_LENGTH + 5))
    text = texts.plain(stored_line(sent, "alice"))
    assert text.startswith("2026-12-07 14:03 <alice> @bob xxx")
    assert text.endswith("x ... (5 more characters)")
    assert len(text) < SHOWN_LENGTH + 60


def test_a_refused_message_is_shown_dim_and_not_delivered():
    refused = stored_line(Stored(0.0, "bob", True, "sure\x1b", refused=True), "alice")
    assert texts.plain(refused).endswith(" <alice> @bob sure^[ (not delivered)")
    assert {style for style, text in refused if "sure" in text} == {"class:dim"}
    delivered = stored_line(Stored(0.0, "bob", True, "sure"), "alice")
    assert "not delivered" not in texts.plain(delivered)
    assert {style for style, text in delivered if "sure" in text} == {"class:body"}


@pytest.mark.parametrize(("count", "heading"), [(0, "No messages with bob are kept."),
                                                (1, "The last message with bob:"),
                                                (3, "The last 3 messages with bob:")])
def test_last_says_how_many(count, heading):
    found = [Stored(0.0, "bob", False, "hi")] * count
    lines = last_lines(found, "bob", "alice")
    assert texts.plain(lines[0]) == heading and len(lines) == max(count + 1, 1)


def test_search_says_how_many_of_how_many():
    one = [Stored(0.0, "bob", False, "hi")]
    assert texts.plain(search_lines([], 0, " x\x1b ", "a")[0]) == "No kept message holds x^[."
    assert texts.plain(search_lines(one, 1, "hi", "a")[0]) == "1 message holds hi:"
    assert texts.plain(search_lines(one * 2, 2, "hi", "a")[0]) == "2 messages hold hi:"
    assert texts.plain(search_lines(one * 2, 70, "hi", "a")[0]) == (
        "70 messages hold hi; the last 2:")


def test_search_quotes_a_huge_text_back_cut_short():
    """A pasted search of 100,000 characters was said back whole: 1,700 rows at 60
    columns for "No kept message holds ..."."""
    said = texts.plain(search_lines([], 0, "q" * 100_000, "a")[0])
    assert said == "No kept message holds " + "q" * 60 + "...."
    one = [Stored(0.0, "bob", False, "hi")]
    assert texts.plain(search_lines(one, 1, "\x1b" * 70, "a")[0]) == (
        "1 message holds " + "^[" * 60 + "...:")


def test_leaving_waits_a_second_at_most_and_says_how_many_were_not_kept(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(archive_module, "CLOSE_WAIT", 0.25)
    monkeypatch.setattr(archive_module, "CHUNK", 10)
    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    add = MessageStore.add
    before_each_write(monkeypatch, lambda batch: time.sleep(0.1))
    for index in range(100):
        archive.received([("bob", f"line {index}")])
    start = time.monotonic()
    unkept = archive.close()
    assert time.monotonic() - start < 1.0
    assert 0 < unkept < 100
    monkeypatch.setattr(MessageStore, "add", add)
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    kept = ask(archive, loop, lambda store: store.last(None, 1000))
    assert len(kept) == 100 - unkept and kept[0].body == "line 0"  # the first ones, whole
    assert archive.close() == 0


def test_messages_before_the_store_is_open_are_kept(tmp_path):
    loop = Loop()
    archive = Archive(loop.call_soon, True)
    archive.received([("bob", "before the login's end")])
    answers: list[Restored | str] = []
    archive.start(tmp_path / "s.sqlite3", answers.append)
    loop.run_one()
    found = ask(archive, loop, lambda store: store.last(None, 5))
    assert [message.body for message in found] == ["before the login's end"]
    archive.close()


def test_an_archive_turned_off_keeps_nothing_and_says_why():
    archive = Archive(lambda callback: None, False)
    archive.received([("bob", "x")])
    archive.start(__import__("pathlib").Path("/nonexistent/s.sqlite3"), print)
    answered: list[object] = []
    archive.ask(lambda store: store.last(None, 1), answered.append)
    assert answered == [archive.why_off] and "--no-store" in archive.why_off
    assert archive.close() == 0


def test_the_chat_log_escapes_names_and_bodies_and_says_who_a_message_went_to(tmp_path):
    from chatsh.ui.chat_log import ChatLog

    path = tmp_path / "chat.log"
    said: list[str] = []
    log = ChatLog(str(path), lambda: "al\u200bice", said.append)
    log.received([("b\x1bob", "one\ttab"), ("zoë", "\u202eback")])
    log.sent("bo\u200bb", "\x1b]0;x\x07")
    log.close()
    log.received([("late", "after the close")])
    lines = [line[20:] if line[:4].isdigit() else line[:14]
             for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == ["--- Log opened", "<b^[ob> one     tab", "<zoë> <U+202E>back",
                     "<al<U+200B>ice> @bo<U+200B>b ^[]0;x^G", "--- Log closed"]
    assert said == []


def test_nothing_is_written_while_the_screen_has_lines_to_draw(tmp_path, monkeypatch):
    monkeypatch.setattr(archive_module, "QUIET", 0.02)
    writes: list[int] = []
    before_each_write(monkeypatch, lambda batch: writes.append(len(batch)))
    drawing = {"now": True}
    loop = Loop()
    archive = Archive(loop.call_soon, True, lambda: 0.0 if drawing["now"] else 1.0)
    archive.start(tmp_path / "s.sqlite3", lambda answer: None)
    loop.run_one()
    archive.received([("bob", "drawn slowly")])
    time.sleep(0.3)  # many quiet periods pass: the screen is still busy
    assert writes == []
    drawing["now"] = False
    deadline = time.monotonic() + DEADLINE
    while not writes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writes == [1]
    archive.close()


def test_a_store_slower_than_the_flood_holds_the_reader_at_its_bound(tmp_path, monkeypatch):
    import threading

    monkeypatch.setattr(archive_module, "MOST_HELD", 10)
    monkeypatch.setattr(archive_module, "MOST_WAITING", 5)
    release = threading.Event()
    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    before_each_write(monkeypatch, lambda batch: release.wait(DEADLINE))
    handed: list[int] = []

    def reader() -> None:
        for index in range(30):
            archive.received([("bob", f"line {index}")])
            handed.append(index)

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while len(handed) < 11 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(handed) == 11  # held at the bound while nothing is written
    release.set()
    thread.join(DEADLINE)
    assert len(handed) == 30
    found = ask(archive, loop, lambda store: store.last(None, 100))
    assert [message.body for message in found] == [f"line {index}" for index in range(30)]
    archive.close()


def test_leaving_lets_a_reader_held_at_the_bound_go_on(tmp_path, monkeypatch):
    import threading

    monkeypatch.setattr(archive_module, "MOST_HELD", 10)
    monkeypatch.setattr(archive_module, "CLOSE_WAIT", 0.1)
    monkeypatch.setattr(archive_module, "CHUNK", 5)
    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    before_each_write(monkeypatch, lambda batch: time.sleep(0.2))
    reader = threading.Thread(target=lambda: [archive.received([("bob", str(index))])
                                              for index in range(1000)])
    reader.start()
    time.sleep(0.1)
    assert archive.close() > 0
    reader.join(DEADLINE)
    assert not reader.is_alive()


def test_a_write_in_the_calm_stops_between_two_transactions_when_a_flood_begins(
        tmp_path, monkeypatch):
    monkeypatch.setattr(archive_module, "QUIET", 0.2)
    monkeypatch.setattr(archive_module, "CHUNK", 10)
    writes: list[tuple[float, int]] = []
    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)

    def meanwhile(batch) -> None:
        writes.append((time.monotonic(), len(batch)))
        if len(writes) == 1:
            archive.received([("bob", "the next flood")])

    before_each_write(monkeypatch, meanwhile)
    for index in range(50):
        archive.received([("bob", str(index))])
    deadline = time.monotonic() + DEADLINE
    while sum(size for _, size in writes) < 51 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writes[0][1] == 10
    assert writes[1][0] - writes[0][0] >= 0.15  # the rest waited for the next calm
    found = ask(archive, loop, lambda store: store.last(None, 100))
    assert [message.body for message in found] == [*map(str, range(50)), "the next flood"]
    archive.close()


def test_the_messages_of_one_big_read_are_split_into_transactions(tmp_path, monkeypatch):
    """One read of 1 MiB holds 20,000 messages: written in one transaction, a flood
    coming meanwhile waited 80 ms for it."""
    monkeypatch.setattr(archive_module, "CHUNK", 10)
    writes: list[int] = []
    before_each_write(monkeypatch, lambda batch: writes.append(
        sum(len(item.pairs) for item in batch)))
    loop = Loop()
    archive, _ = opened_archive(tmp_path / "s.sqlite3", loop)
    archive.received([("bob", str(index)) for index in range(25)])
    found = ask(archive, loop, lambda store: store.last(None, 100))
    assert writes == [10, 10, 5]
    assert [message.body for message in found] == [*map(str, range(25))]
    archive.close()


def test_a_write_in_the_calm_stops_when_the_server_is_heard_before_its_lines_are_read(
        tmp_path, monkeypatch):
    """A flood's first read (256 KiB, 5,000 lines) is parsed before its messages are
    handed over: 10 to 20 ms during which the write went on, its transactions slowing
    the flood by half."""
    monkeypatch.setattr(archive_module, "QUIET", 0.2)
    monkeypatch.setattr(archive_module, "CHUNK", 10)
    heard = [0.0]
    writes: list[tuple[float, int]] = []
    loop = Loop()
    archive = Archive(loop.call_soon, True, heard_at=lambda: heard[0])
    archive.start(tmp_path / "s.sqlite3", lambda remembered: None)
    loop.run_one()

    def meanwhile(batch) -> None:
        writes.append((time.monotonic(), len(batch)))
        heard[0] = time.monotonic()

    before_each_write(monkeypatch, meanwhile)
    for index in range(30):
        archive.received([("bob", str(index))])
    deadline = time.monotonic() + DEADLINE
    while sum(size for _, size in writes) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [size for _, size in writes] == [10, 10, 10]
    assert writes[1][0] - writes[0][0] >= 0.15  # each waited for a calm of its own
    archive.close()
