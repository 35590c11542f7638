"""The shell's message store: every message received and sent, kept in SQLite.

One database per server and login name, under ``$XDG_DATA_HOME/chatsh/`` (else
``~/.local/share/chatsh/``), readable by its owner only and held by one chatsh at a
time. It keeps the messages, whom the user talked with last (recent contacts), the
``!to`` partner and the muted senders. Bodies are found again with SQLite's FTS5 when
this Python's SQLite has it (every word, as the start of a word: ``!search see tom``
finds "see you tomorrow"), else each word as written, anywhere.

Pure storage: no thread, no terminal. Text comes back as it went in; whoever shows
it escapes it. Writing the index costs 30 us a message, five times what showing it
costs, so :meth:`MessageStore.add` leaves it to :meth:`MessageStore.index_some`, called
when the shell is idle (and before a search).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from urllib.parse import quote

from .private import open_private
from .record import Record

SCHEMA_VERSION = 3
"""2: a body is kept up to :data:`KEPT_LENGTH`, with the length of a longer one;
3: a sent message the server refused (``BAD-DEST-USER``) is marked so."""
KEPT_LENGTH = 65536
"""Characters of a body kept (64 KiB of ASCII, 256 KiB at most), and read by the
full-text index; of a longer body, its start and its length (a sender of 64 MiB
messages filled the disk 64 MiB a message)."""
BODY_RETURNED = 2000
"""Characters of a body that ``last`` and ``search`` give back (the rest is counted, never
read into memory: ten bodies of 20 MB are 200 MB)."""
MAX_FILE_NAME = 200
"""Bytes of a database's file name past which the login name is shortened and hashed."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages(
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    peer TEXT NOT NULL,
    outgoing INTEGER NOT NULL,
    body TEXT NOT NULL,
    full_length INTEGER,
    refused INTEGER);
CREATE INDEX IF NOT EXISTS messages_by_peer ON messages(peer, id);
CREATE TABLE IF NOT EXISTS contacts(peer TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS muted(name TEXT PRIMARY KEY);
"""
_FULL_TEXT = """CREATE VIRTUAL TABLE IF NOT EXISTS messages_text USING fts5(
    body, content='', tokenize='unicode61 remove_diacritics 2')"""
KEPT_NAME = 256
"""Characters of a name kept: no name a user can type is longer (64 at most), and a
server that takes longer ones could send a name of megabytes with every message."""
_INSERT = "INSERT INTO messages(at, peer, outgoing, body, full_length) VALUES (?, ?, ?, ?, ?)"
_sender = itemgetter(0)
_body = itemgetter(1)


def _kept(body: str) -> tuple[str, int | None]:
    """What is kept of ``body``, and its length if that is not all of it."""
    return (body, None) if len(body) <= KEPT_LENGTH else (body[:KEPT_LENGTH], len(body))


class StoreError(Exception):
    """The store cannot be used; the message is one line."""


class Stored(Record):
    """A message as kept: when (seconds since the epoch), with whom, which way, what (at
    most :data:`BODY_RETURNED` characters of it), how long it is, and whether the
    server refused it (one the user sent to a name not online)."""

    __slots__ = ("at", "peer", "outgoing", "body", "length", "refused")

    def __init__(self, at: float, peer: str, outgoing: bool, body: str,
                 length: int | None = None, refused: bool = False) -> None:
        self.at, self.peer, self.outgoing, self.body = at, peer, outgoing, body
        self.length = len(body) if length is None else length
        self.refused = refused


class Received(Record):
    """Messages that came in one read, as ``(sender, body)`` pairs, at one time."""

    __slots__ = ("at", "pairs")

    def __init__(self, at: float, pairs: Sequence[tuple[str, str]]) -> None:
        self.at, self.pairs = at, pairs


class Sent(Record):
    """A message the user sent; ``row`` is where :meth:`MessageStore.add` kept it."""

    __slots__ = ("at", "peer", "body", "row")

    def __init__(self, at: float, peer: str, body: str) -> None:
        self.at, self.peer, self.body = at, peer, body
        self.row: int | None = None


def data_home() -> Path:
    """Where chatsh keeps its stores: ``$XDG_DATA_HOME/chatsh`` or ``~/.local/share/chatsh``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                           ".local", "share")
    return Path(base) / "chatsh"


def store_path(directory: Path, server: str, name: str) -> Path:
    """The database of ``name`` on ``server`` (``host:port``): a file name that holds
    any name and host as ``%``-escapes, a long name shortened and made unique by a hash."""
    quoted = quote(name, safe="")
    if len(quoted) > MAX_FILE_NAME // 2:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        quoted = f"{quoted[:MAX_FILE_NAME // 4]}~{digest}"
    return directory / f"{quoted}@{quote(server, safe='')[:MAX_FILE_NAME // 2]}.sqlite3"


_WORD_BREAK = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
"""What parts the words of a search: white space and control characters (a NUL ended
the text SQLite looked for: ``!search`` of a NUL matched every message)."""


def search_words(text: str) -> list[str]:
    """The words of a search, each once (in any case: the index folds it), in order."""
    first: dict[str, str] = {}
    for word in _WORD_BREAK.split(text):
        if word:
            first.setdefault(word.casefold(), word)
    return list(first.values())



def full_text_available() -> bool:
    """Whether this Python's SQLite has FTS5."""
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE probe USING fts5(body)")
    except sqlite3.Error:
        return False
    return True


def _identity(path: Path) -> tuple[int, int]:
    """The device and inode of the file at ``path``."""
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (in a directory of theirs alone when
    it is new), or make an existing one so."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(open_private(path, os.O_RDWR | os.O_NOFOLLOW)[0])


class MessageStore:
    """One database, opened for as long as the shell runs; one thread uses it."""

    def __init__(self, path: Path, full_text: bool | None = None) -> None:
        """Open (or make) the store at ``path``; :class:`StoreError` says why not.
        ``full_text`` None: with FTS5 if this Python's SQLite has it."""
        self.path = path
        self.full_text = full_text_available() if full_text is None else full_text
        try:
            _private_file(path)
            self._file = _identity(path)
        except OSError as exc:
            raise StoreError(f"cannot open the message store {path}: "
                             f"{exc.strerror or exc}") from None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=0,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the message store {path}: {exc}") from None
        try:
            self._prepare()
        except sqlite3.Error as exc:
            self._db.close()
            locked = "locked" in str(exc)
            raise StoreError(f"the message store {path} is in use by another chatsh"
                             if locked else f"cannot open the message store {path}: {exc}"
                             ) from None

    def _prepare(self) -> None:
        db = self._db
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN EXCLUSIVE")  # held until closed: a second chatsh is told at once
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.execute("ROLLBACK")
            raise sqlite3.DatabaseError(f"made by a newer chatsh (schema {version})")
        db.executescript(_SCHEMA)  # commits
        columns = [row[1] for row in db.execute("PRAGMA table_info(messages)")]
        if "full_length" not in columns:  # made by schema 1, whose bodies are whole
            db.execute("ALTER TABLE messages ADD COLUMN full_length INTEGER")
        if "refused" not in columns:  # made by schema 1 or 2, which kept no refusal
            db.execute("ALTER TABLE messages ADD COLUMN refused INTEGER")
        if self.full_text:
            db.execute(_FULL_TEXT)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    # --- writing ---------------------------------------------------------------

    def add(self, batch: Sequence[Received | Sent]) -> None:
        """Keep the messages of ``batch`` in their order, in one transaction;
        :class:`StoreError` when the file opened is no longer at its path (removed,
        its directory with it, or replaced), where nothing could read them again."""
        try:
            moved = _identity(self.path) != self._file
        except OSError:
            moved = True
        if moved:
            raise StoreError(f"{self.path} was removed or replaced while chatsh ran")
        db = self._db
        peers: dict[str, None] = {}
        with _transaction(db):
            for item in batch:
                if isinstance(item, Received):
                    pairs = item.pairs
                    if max(map(len, map(_sender, pairs)), default=0) > KEPT_NAME:
                        pairs = [(sender[:KEPT_NAME], body) for sender, body in pairs]
                    if max(map(len, map(_body, pairs)), default=0) > KEPT_LENGTH:
                        db.executemany(_INSERT, ((item.at, sender, 0, *_kept(body))
                                                 for sender, body in pairs))
                    else:  # the common case, without a tuple made for each message
                        db.executemany(
                            "INSERT INTO messages(at, peer, outgoing, body) VALUES (?, ?, 0, ?)",
                            zip(repeat(item.at), map(_sender, pairs), map(_body, pairs)))
                    for sender in dict.fromkeys(map(_sender, pairs)):
                        peers.pop(sender, None)
                        peers[sender] = None
                else:
                    peer = item.peer[:KEPT_NAME]
                    item.row = db.execute(_INSERT, (item.at, peer, 1, *_kept(item.body))
                                          ).lastrowid
                    peers.pop(peer, None)
                    peers[peer] = None
            db.executemany(  # the latest contact last, with the highest number
                "INSERT INTO contacts(peer, last) VALUES (?1, (SELECT max(id) FROM messages "
                "WHERE peer = ?1)) ON CONFLICT(peer) DO UPDATE SET last = excluded.last",
                ((peer,) for peer in peers))

    def refused(self, sent: Sent) -> None:
        """Mark ``sent`` (kept by :meth:`add`) as refused by the server."""
        if sent.row is not None:
            with _transaction(self._db):
                self._db.execute("UPDATE messages SET refused = 1 WHERE id = ?", (sent.row,))

    def index_some(self, count: int = 500) -> bool:
        """Add up to ``count`` messages to the full-text index; whether more wait."""
        if not self.full_text:
            return False
        db = self._db
        with _transaction(db):
            done = int(self.setting("indexed") or 0)
            last = db.execute("SELECT max(id) FROM (SELECT id FROM messages WHERE id > ? "
                              "ORDER BY id LIMIT ?)", (done, count)).fetchone()[0]
            if last is None:
                return False
            db.execute("INSERT INTO messages_text(rowid, body) SELECT id, substr(body, 1, ?) "
                       "FROM messages WHERE id > ? AND id <= ?", (KEPT_LENGTH, done, last))
            self._set_setting("indexed", str(last))
        return db.execute("SELECT 1 FROM messages WHERE id > ?", (last,)).fetchone() is not None

    def set_setting(self, key: str, value: str | None) -> None:
        with _transaction(self._db):
            self._set_setting(key, value)

    def _set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            self._db.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) "
                             "DO UPDATE SET value = excluded.value", (key, value))

    def set_muted(self, name: str, muted: bool) -> None:
        with _transaction(self._db):
            self._db.execute("INSERT OR IGNORE INTO muted(name) VALUES (?)" if muted
                             else "DELETE FROM muted WHERE name = ?", (name,))

    # --- reading ---------------------------------------------------------------

    def setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def muted(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT name FROM muted ORDER BY name")]

    def recent_contacts(self, count: int) -> list[str]:
        """Whom the user talked with last, the latest first."""
        return [row[0] for row in self._db.execute(
            "SELECT peer FROM contacts ORDER BY last DESC LIMIT ?", (count,))]

    def last(self, peer: str | None, count: int) -> list[Stored]:
        """The last ``count`` messages with ``peer`` (with anyone: None), oldest first."""
        where, args = ("WHERE peer = ?", (peer, count)) if peer is not None else ("", (count,))
        return self._messages(f"FROM messages {where} ORDER BY id DESC LIMIT ?", args)

    def search(self, text: str, count: int) -> tuple[list[Stored], int]:
        """The last ``count`` messages whose body has every word of ``text``, oldest
        first, and how many there are in all. Words are literal: the index finds those
        with a letter or digit, by their start; the others (and all of them without the
        index) are found as written, anywhere, in any case of ASCII letters, as ``LIKE``
        would, by ``instr`` (``LIKE`` matches the word character by character at every
        place of a body: 1,000 characters over 2,000 bodies of 2,000 took 7.9 s, 0.03 s
        now)."""
        words = search_words(text)
        if not words:
            return [], 0
        indexed = [word for word in words if self.full_text
                   and any(char.isalnum() for char in word)]
        conditions = ["instr(lower(body), lower(?))"] * (len(words) - len(indexed))
        args: list[object] = [word for word in words if word not in indexed]
        if indexed:
            while self.index_some(20_000):
                pass
            conditions.insert(0, "id IN (SELECT rowid FROM messages_text "
                                 "WHERE messages_text MATCH ?)")
            args.insert(0, " ".join('"' + word.replace('"', '""') + '"*' for word in indexed))
        matching = " AND ".join(conditions)
        total = self._db.execute(f"SELECT count(*) FROM messages WHERE {matching}",
                                 args).fetchone()[0]
        found = self._messages(f"FROM messages WHERE {matching} ORDER BY id DESC LIMIT ?",
                               (*args, count))
        return found, int(total)

    def _messages(self, rest: str, args: tuple[object, ...]) -> list[Stored]:
        """The messages ``SELECT ... rest`` finds, oldest first, their bodies cut."""
        rows = self._db.execute("SELECT at, peer, outgoing, substr(body, 1, ?), "
                                "coalesce(full_length, length(body)), refused " + rest,
                                (BODY_RETURNED, *args)).fetchall()
        return [Stored(at, peer, bool(outgoing), body, length, bool(refused))
                for at, peer, outgoing, body, length, refused in reversed(rows)]


class _transaction:
    """``BEGIN`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
