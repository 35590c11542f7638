"""The message store: SQLite on disk, private, one chatsh at a time, found again."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from chatsh.store import (
    BODY_RETURNED,
    KEPT_LENGTH,
    KEPT_NAME,
    MessageStore,
    Received,
    Sent,
    Stored,
    StoreError,
    data_home,
    full_text_available,
    store_path,
)


@pytest.fixture(params=[True, False], ids=["fts5", "like"])
def store(request, tmp_path):
    if request.param and not full_text_available():
        pytest.skip("this Python's SQLite has no FTS5")
    opened = MessageStore(tmp_path / "data" / "alice@host.sqlite3", full_text=request.param)
    yield opened
    opened.close()


def texts(found: list[Stored]) -> list[str]:
    return [("> " if message.outgoing else "< ") + f"{message.peer}: {message.body}"
            for message in found]


def test_messages_come_back_in_their_order_per_conversation(store):
    store.add([Received(1.0, [("bob", "hi alice"), ("carol", "hello")]),
               Sent(2.0, "bob", "hi bob"), Received(3.0, [("bob", "how are you")])])
    store.add([Sent(4.0, "carol", "later")])
    assert texts(store.last("bob", 10)) == ["< bob: hi alice", "> bob: hi bob",
                                            "< bob: how are you"]
    assert texts(store.last("bob", 2)) == ["> bob: hi bob", "< bob: how are you"]
    assert texts(store.last(None, 2)) == ["< bob: how are you", "> carol: later"]
    assert [message.at for message in store.last(None, 10)] == [1.0, 1.0, 2.0, 3.0, 4.0]
    assert store.last("nobody", 5) == []


def test_recent_contacts_the_latest_first(store):
    store.add([Received(1.0, [("bob", "1"), ("carol", "2"), ("bob", "3")]),
               Sent(2.0, "dave", "4")])
    assert store.recent_contacts(10) == ["dave", "bob", "carol"]
    store.add([Received(3.0, [("carol", "5")])])
    assert store.recent_contacts(2) == ["carol", "dave"]


def test_search_finds_words_and_says_how_many(store):
    store.add([Received(1.0, [("bob", "see you tomorrow"), ("carol", "Tomorrow then")]),
               Sent(2.0, "bob", "100% sure_thing"), Received(3.0, [("dave", "nothing")])])
    found, total = store.search("tomorrow", 10)
    assert texts(found) == ["< bob: see you tomorrow", "< carol: Tomorrow then"]
    assert total == 2
    found, total = store.search("tomorrow", 1)
    assert texts(found) == ["< carol: Tomorrow then"] and total == 2
    assert texts(store.search("100% sure", 10)[0]) == ["> bob: 100% sure_thing"]
    assert store.search("%", 10)[1] == 1 and store.search("_", 10)[1] == 1
    assert store.search("zebra", 10) == ([], 0)
    assert store.search('"quoted" AND (', 10) == ([], 0)  # no query syntax to break


def test_full_text_finds_words_by_their_start_in_any_order(tmp_path):
    if not full_text_available():
        pytest.skip("this Python's SQLite has no FTS5")
    store = MessageStore(tmp_path / "s.sqlite3")
    assert store.full_text
    store.add([Received(1.0, [("bob", "see you tomorrow at the Café")])])
    assert store.search("tom see", 5)[1] == 1
    assert store.search("cafe", 5)[1] == 1  # accents ignored
    assert store.search("morrow", 5)[1] == 0  # words, by their start
    store.close()


def test_the_index_is_written_apart_and_catches_up(tmp_path):
    if not full_text_available():
        pytest.skip("this Python's SQLite has no FTS5")
    store = MessageStore(tmp_path / "s.sqlite3")
    store.add([Received(1.0, [("bob", f"line {index}") for index in range(5)])])
    assert store.index_some(2) is True
    assert store.index_some(2) is True
    assert store.index_some(2) is False
    assert store.index_some(2) is False
    store.add([Received(2.0, [("bob", "fresh words")])])
    assert store.search("fresh", 5)[1] == 1  # a search brings the index up to date first
    assert store.search("line", 10)[1] == 5
    store.close()


def test_settings_and_muted_names_are_kept(tmp_path):
    path = tmp_path / "s.sqlite3"
    store = MessageStore(path)
    store.set_setting("partner", "bob")
    store.set_muted("zed", True)
    store.set_muted("amy", True)
    store.set_muted("amy", True)
    store.add([Received(1.0, [("bob", "kept")])])
    store.close()
    store = MessageStore(path)
    assert store.setting("partner") == "bob" and store.muted() == ["amy", "zed"]
    store.set_setting("partner", None)
    store.set_muted("zed", False)
    assert store.setting("partner") is None and store.muted() == ["amy"]
    assert texts(store.last(None, 5)) == ["< bob: kept"]
    store.close()


def test_the_file_and_its_directory_are_private(tmp_path):
    path = tmp_path / "new" / "s.sqlite3"
    MessageStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)
    store = MessageStore(path)
    store.add([Received(1.0, [("bob", "x" * 10)])])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for other in tmp_path.glob("new/s.sqlite3-*"):  # the write-ahead log
        assert stat.S_IMODE(other.stat().st_mode) == 0o600
    store.close()


HOLD = """
import sys
from chatsh.store import MessageStore
store = MessageStore(__import__("pathlib").Path(sys.argv[1]))
print("open", flush=True)
sys.stdin.read()
"""


def test_a_second_chatsh_is_told_the_store_is_in_use(tmp_path):
    path = tmp_path / "s.sqlite3"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        with pytest.raises(StoreError, match="in use by another chatsh"):
            MessageStore(path)
    finally:
        holder.stdin.close()
        holder.wait(10)
    MessageStore(path).close()  # free again once the other one is gone


@pytest.mark.parametrize("spoil", ["garbage", "directory", "read-only", "under a file",
                                   "symbolic link"])
def test_a_store_that_cannot_be_opened_says_why_in_one_line(tmp_path, spoil):
    path = tmp_path / "data" / "s.sqlite3"
    path.parent.mkdir()
    if spoil == "under a file":  # $XDG_DATA_HOME names a file: no directory can be made
        (tmp_path / "data" / "file").write_text("")
        path = tmp_path / "data" / "file" / "chatsh" / "s.sqlite3"
    elif spoil == "symbolic link":  # never followed to write elsewhere
        (tmp_path / "elsewhere").write_text("kept\n")
        path.symlink_to(tmp_path / "elsewhere")
    elif spoil == "garbage":
        path.write_bytes(b"this is no database at all, " * 100)
    elif spoil == "directory":
        path.mkdir()
    else:
        path.parent.chmod(0o500)
        if os.access(path.parent, os.W_OK):
            pytest.skip("running as a user who can write a read-only directory")
    with pytest.raises(StoreError) as caught:
        MessageStore(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    if spoil == "garbage":
        assert path.read_bytes().startswith(b"this is no database")  # left as it was
    if spoil == "symbolic link":
        assert (tmp_path / "elsewhere").read_text() == "kept\n"


def test_a_store_of_a_newer_chatsh_is_left_alone(tmp_path):
    import sqlite3

    path = tmp_path / "s.sqlite3"
    MessageStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer chatsh"):
        MessageStore(path)


def test_one_file_per_server_and_name_whatever_the_name_holds(tmp_path):
    names = ["alice", "Alice", "../../etc/passwd", ".", "..", "a/b", "zoë", "x" * 5000,
             "x" * 4999 + "y"]
    paths = [store_path(tmp_path, "chat.example.org:5378", name) for name in names]
    assert len(set(paths)) == len(names)
    for path in paths:
        assert path.parent == tmp_path and len(path.name.encode()) <= 255
    assert store_path(tmp_path, "embedded", "alice") != paths[0]
    assert store_path(tmp_path, "[::1]:5378", "alice").parent == tmp_path


def test_the_data_home_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg" / "chatsh"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert data_home() == tmp_path / "home" / ".local" / "share" / "chatsh"


def test_a_word_said_again_in_a_search_is_looked_for_once(store):
    """Each word of a search was a term of the full-text query however often it came:
    '!search' with 5,000 times 'a' took 5.2 s over 5,000 messages (20,000 words: 317 s
    over 50,000), the store's thread busy all that time."""
    if not store.full_text:
        pytest.skip("without FTS5 the text is looked for as written")
    store.add([Received(1.0, [("bob", f"a note {number}") for number in range(5000)])])
    store.search("warm the index up", 1)
    started = time.monotonic()
    assert store.search(" ".join(["a", "A"] * 2500), 5)[1] == 5000
    assert time.monotonic() - started < 1.0


def test_a_long_body_comes_back_cut_with_its_length(store):
    """!last and !search show 2,000 characters of a body; the store gave the whole of each
    body all the same: '!last 10' after ten 20 MB messages took the shell from 37 MB to
    253 MB at its peak."""
    store.add([Received(1.0, [("bob", "big " + "z" * 5_000_000)]), Sent(2.0, "bob", "ok")])
    for found in (store.last("bob", 5), store.search("big", 5)[0]):
        assert [len(message.body) for message in found][:1] == [BODY_RETURNED]
        assert found[0].length == 5_000_004 and found[0].body.startswith("big zz")
    assert [(message.body, message.length) for message in store.last(None, 1)] == [("ok", 2)]


def test_a_body_is_kept_up_to_its_bound_and_its_length_counted(store):
    """Every body was kept whole: a sender of 64 MiB messages (the server's line cap)
    filled the disk 64 MiB a message, 6.4 GB for a hundred."""
    big = "big " + "z" * (50 * KEPT_LENGTH)
    store.add([Received(1.0, [("bob", big), ("bob", "small")]),
               Sent(2.0, "bob", "y" * (KEPT_LENGTH + 1)), Sent(3.0, "bob", "x" * KEPT_LENGTH)])
    files = sum(path.stat().st_size for path in store.path.parent.iterdir())
    assert files < 2_000_000  # the bodies' kept parts (200 KB), not the whole (3.5 MB)
    found = store.last("bob", 5)
    assert [message.length for message in found] == [len(big), 5, KEPT_LENGTH + 1, KEPT_LENGTH]
    assert found[0].body == big[:BODY_RETURNED] and found[1].body == "small"
    assert store.search("big", 5)[1] == 1


def test_a_store_of_the_first_schema_gets_the_bound_and_keeps_its_messages(tmp_path):
    import sqlite3

    path = tmp_path / "s.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE messages(id INTEGER PRIMARY KEY, at REAL NOT NULL, peer TEXT NOT NULL,
                              outgoing INTEGER NOT NULL, body TEXT NOT NULL);
        INSERT INTO messages(at, peer, outgoing, body) VALUES (1.0, 'bob', 0, 'from before');
        PRAGMA user_version=1;""")
    db.close()
    store = MessageStore(path)
    store.add([Received(2.0, [("bob", "z" * (KEPT_LENGTH + 5))])])
    assert [(message.body[:11], message.length) for message in store.last("bob", 5)] == [
        ("from before", 11), ("z" * 11, KEPT_LENGTH + 5)]
    store.close()


def test_a_refused_message_is_marked_and_the_others_not(store):
    delivered, refused = Sent(1.0, "bob", "same"), Sent(2.0, "bob", "same")
    store.add([delivered, refused, Received(3.0, [("bob", "hi")])])
    store.refused(refused)
    store.refused(Sent(4.0, "bob", "never written"))  # nothing kept: nothing marked
    assert [(message.at, message.refused) for message in store.last("bob", 5)] == [
        (1.0, False), (2.0, True), (3.0, False)]
    [found] = store.search("same", 1)[0]
    assert found.refused


def test_a_store_of_the_second_schema_opens_with_nothing_refused(tmp_path):
    import sqlite3

    path = tmp_path / "s.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE messages(id INTEGER PRIMARY KEY, at REAL NOT NULL, peer TEXT NOT NULL,
                              outgoing INTEGER NOT NULL, body TEXT NOT NULL,
                              full_length INTEGER);
        INSERT INTO messages(at, peer, outgoing, body) VALUES (1.0, 'bob', 1, 'from before');
        PRAGMA user_version=2;""")
    db.close()
    store = MessageStore(path)
    sent = Sent(2.0, "bob", "now")
    store.add([sent])
    store.refused(sent)
    assert [(message.body, message.refused) for message in store.last("bob", 5)] == [
        ("from before", False), ("now", True)]
    store.close()


@pytest.mark.parametrize(("text", "found"), [
    ("\x00", []),  # matched every message (LIKE '%\x00%' ends at the NUL)
    ("hello\x00", ["hello there !!!", "hello world"]),  # an error from FTS5
    ("\x00see", ["see you tomorrow"]),
    ("see\x00you", ["see you tomorrow"]),
    ("hello !!!", ["hello there !!!"]),  # every word, punctuation too
    ("!!!", ["hello there !!!"]),
    ("*", ["a*b"]),
    ("-", ["x-ray NEAR the end"]),
    ("NEAR", ["x-ray NEAR the end"]),
    ('"', []),
    ("x-ray", ["x-ray NEAR the end"]),
])
def test_a_search_takes_its_text_as_literal_words(store, text, found):
    store.add([Received(1.0, [("bob", "see you tomorrow"), ("bob", "hello there !!!"),
                              ("bob", "hello world"), ("bob", "x-ray NEAR the end"),
                              ("bob", "a*b")])])
    messages, total = store.search(text, 10)
    assert sorted(message.body for message in messages) == found and total == len(found)


def test_a_long_name_is_kept_cut(store):
    """A server that takes long names (or a hostile one) sent messages from a name of
    1 MB: each kept it whole, past the bound on bodies, and so did the recent contacts."""
    name = "n" * 1_000_000
    store.add([Received(1.0, [(name, "hi")] * 3), Sent(2.0, name, "yo")])
    assert sum(path.stat().st_size for path in store.path.parent.iterdir()) < 1_000_000
    assert store.recent_contacts(5) == [name[:KEPT_NAME]]
    assert [message.peer for message in store.last(None, 5)] == [name[:KEPT_NAME]] * 4


def test_a_long_word_without_letters_is_looked_for_quickly(store):
    """Such words were found with LIKE, which tries the whole pattern at every place of
    a body: '!' * 1000 + '?' over 2,000 bodies of 2,000 '!' took 7.9 s (a store of a
    sender's 100,000 such messages: minutes, the store's thread busy all that time)."""
    store.add([Received(1.0, [("bob", "!" * 2000)] * 2000 + [("bob", "Ab!?")])])
    started = time.monotonic()
    assert store.search("!" * 1000 + "?", 5) == ([], 0)
    assert time.monotonic() - started < 1.0
    assert [message.body for message in store.search("aB!?", 5)[0]] == ["Ab!?"]


@pytest.mark.parametrize("spoil", ["removed", "replaced", "directory"])
def test_a_store_removed_or_replaced_while_open_is_said_not_written_to_in_vain(tmp_path,
                                                                             spoil):
    """Messages went on into the file opened, which nothing could read again once it
    was removed (or its directory, by a clean-up) or replaced: lost without a word."""
    path = tmp_path / "data" / "s.sqlite3"
    store = MessageStore(path)
    store.add([Received(1.0, [("bob", "kept")])])
    path.unlink()
    if spoil == "replaced":
        path.write_bytes(b"garbage " * 100)
    elif spoil == "directory":
        path.mkdir()
    with pytest.raises(StoreError) as caught:
        store.add([Received(2.0, [("bob", "lost")])])
    assert str(caught.value) == f"{path} was removed or replaced while chatsh ran"
    store.close()
