"""The messages' way to the store: a thread of its own writes them, off the event loop.

The reader thread and the event loop only put what came and what was sent on a queue (a
reference to the read's list, no copy). The archive's thread gathers them and writes
them, :data:`CHUNK` to a transaction, once no message came for :data:`QUIET` seconds and
the screen has had nothing to draw for as long (a flood the terminal draws slower than
it comes holds the reader, which would look like a pause), or after :data:`LONGEST_WAIT`
in a flood that never pauses: a flood is drawn before it is written, and a write in the
calm stops between two transactions when the server is heard again. The full-text index
follows when the shell has been idle a while. Questions (``!last``, ``!search``) go
through the same queue, so they see every message before them; their answers, and
whatever the shell's state needs, are handed to the event loop, the only thread that
changes that state. A store slower than a flood that never ends holds the reader at
:data:`MOST_HELD` messages not yet written, as a slow terminal does: memory stays
bounded and every message is kept.
The chat log (``--log``) is written at once, by the thread that hands a message over.
"""

from __future__ import annotations

import functools
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ..record import Record
from ..store import MessageStore, Received, Sent, StoreError
from .chat_log import ChatLog

QUIET = 0.25
"""Seconds without a message after which those gathered are written."""
LONGEST_WAIT = 2.0
"""Seconds a message waits at most before it is written, however long a flood lasts."""
MOST_WAITING = 100_000
"""Messages gathered at most before they are written."""
MOST_HELD = 200_000
"""Messages handed over and not written yet past which the reader waits (some 40 MB)."""
IDLE = 1.0
"""Seconds without a message before the full-text index is brought up to date."""
CLOSE_WAIT = 1.0
"""Seconds leaving waits for the messages still to be written (a flood's last second:
100,000 messages or more); what is left then is not kept, and leaving says so."""
CHUNK = 1000
"""Messages written in one transaction at most (2 ms): a write in the calm after a
flood stops between two as soon as the server is heard again, and goes on in the calm
after the next flood (one of 20,000 messages took 60 ms, and slowed a flood that
came meanwhile by half)."""
RECENT = 50
"""Recent contacts read back from the store."""

T = TypeVar("T")


class Restored(Record):
    """What the store remembers of earlier sessions, for the shell's state."""

    __slots__ = ("recent", "partner", "muted")

    def __init__(self, recent: list[str], partner: str | None, muted: list[str]) -> None:
        self.recent, self.partner, self.muted = recent, partner, muted


class _Question(Record):
    __slots__ = ("ask", "answer")

    def __init__(self, ask: Callable[[MessageStore], object],
                 answer: Callable[[object], None]) -> None:
        self.ask, self.answer = ask, answer


class _Setting(Record):
    __slots__ = ("write",)

    def __init__(self, write: Callable[[MessageStore], None]) -> None:
        self.write = write


_STOP = object()
Item = Received | Sent | _Question | _Setting | object


def _never() -> bool:
    return False


def _past(deadline: float) -> Callable[[], bool]:
    """Whether the monotonic clock is past ``deadline``."""
    return lambda: time.monotonic() > deadline


class Archive:
    """The store of one session, on its own thread; ``call_soon`` runs a callable on
    the event loop, ``drawn_for`` how long the screen has had nothing to draw,
    ``heard_at`` when the server was last heard (monotonic seconds). When
    ``keep`` (the store is not turned off), messages are queued from the start, so none
    that comes before the store is open is lost."""

    def __init__(self, call_soon: Callable[[Callable[[], object]], None], keep: bool,
                 drawn_for: Callable[[], float] = lambda: QUIET,
                 heard_at: Callable[[], float] = lambda: 0.0) -> None:
        self._call_soon = call_soon
        self._drawn_for = drawn_for
        self._heard_at = heard_at
        self.why_off = "the message store is off (--no-store, or store = false in the settings)"
        """What a question to a store that is off is answered."""
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._unkept: int | None = None
        """Messages not written when leaving (None until the thread has left)."""
        self._held = 0
        """Messages handed over and not written yet."""
        self._written = threading.Condition()
        """Told when messages were written (a reader may be waiting)."""
        self.open = keep
        """Whether messages are being kept (until the store fails)."""
        self.log: ChatLog | None = None
        """The chat log (``--log``), written as messages come, in the caller's thread."""

    def start(self, path: Path, opened: Callable[[Restored | str], None]) -> None:
        """Open the store at ``path`` on the archive's thread; ``opened`` gets what it
        remembers, or a one-line reason it cannot be used, on the event loop."""
        if self._thread is not None or not self.open:
            return
        self._thread = threading.Thread(target=self._run, args=(path, opened),
                                        name="chatsh-archive", daemon=True)
        self._thread.start()

    # --- from any thread -------------------------------------------------------

    def received(self, pairs: Sequence[tuple[str, str]]) -> None:
        if self.log is not None:
            self.log.received(pairs)
        if self.open:
            self._hold(len(pairs))
            self._queue.put(Received(time.time(), pairs))

    def sent(self, peer: str, body: str) -> Sent | None:
        """Keep a message the user sent; what :meth:`refused` takes if the server refuses it."""
        if self.log is not None:
            self.log.sent(peer, body)
        if not self.open:
            return None
        self._hold(1)
        sent = Sent(time.time(), peer, body)
        self._queue.put(sent)
        return sent

    def refused(self, sent: Sent) -> None:
        """Mark ``sent`` as refused by the server (``BAD-DEST-USER``), once it is written."""
        if self.open:
            self._queue.put(_Setting(lambda store: store.refused(sent)))

    def _hold(self, count: int) -> None:
        """Count ``count`` more messages as held, first waiting while too many are."""
        with self._written:
            while self._held > MOST_HELD and self.open:
                self._written.wait(0.5)
            self._held += count

    def _release(self, count: int) -> None:
        with self._written:
            self._held -= count
            self._written.notify_all()

    def setting(self, key: str, value: str | None) -> None:
        if self.open:
            self._queue.put(_Setting(lambda store: store.set_setting(key, value)))

    def muted(self, name: str, muted: bool) -> None:
        if self.open:
            self._queue.put(_Setting(lambda store: store.set_muted(name, muted)))

    def ask(self, ask: Callable[[MessageStore], T], answer: Callable[[T | str], None]) -> None:
        """Run ``ask`` on the store after every message before it is written; ``answer``
        gets its result on the event loop (or a one-line reason it failed)."""
        if not self.open:
            answer(self.why_off)
            return
        self._queue.put(_Question(ask, answer))  # type: ignore[arg-type]

    def close(self) -> int:
        """Write what is still waiting (for about :data:`CLOSE_WAIT` seconds), then
        close the store; how many messages were not kept."""
        if self._thread is None:
            return 0
        self._queue.put(_STOP)
        self._thread.join(CLOSE_WAIT + 1.0)  # its last transaction may end past the wait
        self._thread = None
        return self._unkept or 0

    # --- the archive's thread --------------------------------------------------

    def _run(self, path: Path, opened: Callable[[Restored | str], None]) -> None:
        try:
            store = MessageStore(path)
            remembered = Restored(store.recent_contacts(RECENT), store.setting("partner"),
                                  store.muted())
        except (StoreError, sqlite3.Error) as exc:
            self._stop()
            self._call_soon(functools.partial(opened, f"{exc}; going on without it"))
            return
        self._call_soon(functools.partial(opened, remembered))
        try:
            self._serve(store)
        except (StoreError, sqlite3.Error) as exc:
            self._stop()
            self._call_soon(functools.partial(opened, f"cannot write the message store any "
                                                      f"more: {exc}; going on without it"))
            self._refuse_questions()
        finally:
            self._shut()
            store.close()

    def _refuse_questions(self) -> None:
        """Questions asked before the store failed get an answer all the same."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Question):
                self._call_soon(functools.partial(item.answer, self.why_off))

    def _serve(self, store: MessageStore) -> None:
        waiting: list[Received | Sent] = []
        count = 0
        since = 0.0
        idle: float | None = IDLE  # seconds until the index is brought up to date
        while True:
            if waiting:
                timeout: float | None = max(0.0, min(QUIET, since + LONGEST_WAIT
                                                     - time.monotonic()))
            else:
                timeout = idle
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                still = self._drawn_for() >= QUIET  # a flood still being drawn: not yet
                overdue = time.monotonic() - since >= LONGEST_WAIT
                if waiting and (still or overdue):
                    waiting = self._write(store, waiting, _never if overdue
                                          else self._heard_since(time.monotonic()))
                    count, since, idle = sum(map(_size, waiting)), time.monotonic(), IDLE
                elif not waiting:  # idle: some of the index at a time, asking the queue between
                    idle = (0.01 if store.index_some() else None) if still else IDLE
                continue
            if isinstance(item, (Received, Sent)):
                if not waiting:
                    since = time.monotonic()
                waiting.append(item)
                count += _size(item)
                if count < MOST_WAITING and time.monotonic() - since < LONGEST_WAIT:
                    continue
            if item is _STOP:
                left = self._write(store, waiting, _past(time.monotonic() + CLOSE_WAIT))
                self._unkept = sum(map(_size, left))
                return
            if waiting:
                try:
                    self._write(store, waiting)
                except (StoreError, sqlite3.Error):
                    self._queue.put(item)  # a question is answered once the failure is said
                    raise
                waiting, count, idle = [], 0, IDLE
            if isinstance(item, _Setting):
                item.write(store)
            elif isinstance(item, _Question):
                self._answer(store, item)

    def _write(self, store: MessageStore, waiting: list[Received | Sent],
               enough: Callable[[], bool] = _never) -> list[Received | Sent]:
        """Write the messages waiting, :data:`CHUNK` to a transaction, until ``enough``
        says so between two; those left."""
        chunks = _chunks(waiting)
        for index, chunk in enumerate(chunks):
            store.add(chunk)
            self._release(sum(map(_size, chunk)))
            if index < len(chunks) - 1 and enough():
                return [item for rest in chunks[index + 1:] for item in rest]
        return []

    def _heard_since(self, start: float) -> Callable[[], bool]:
        """Whether the server was heard, or messages (or a question) came, since
        ``start``."""
        return lambda: self._heard_at() > start or not self._queue.empty()

    def _answer(self, store: MessageStore, question: _Question) -> None:
        try:
            result = question.ask(store)
        except sqlite3.Error as exc:
            result = f"the message store could not answer: {exc}"
        self._call_soon(functools.partial(question.answer, result))

    def _stop(self) -> None:
        """Keep nothing more."""
        self.why_off = "the message store is off (see above)"
        self._shut()

    def _shut(self) -> None:
        """Take no more messages; a reader waiting for room goes on."""
        self.open = False
        with self._written:
            self._written.notify_all()


def _chunks(waiting: list[Received | Sent]) -> list[list[Received | Sent]]:
    """The messages waiting, in order, :data:`CHUNK` to a list at most (the messages
    of one read split where need be: a read of 1 MiB holds 20,000)."""
    chunks: list[list[Received | Sent]] = [[]]
    room = CHUNK
    for item in waiting:
        while isinstance(item, Received) and len(item.pairs) > room:
            chunks[-1].append(Received(item.at, item.pairs[:room]))
            item = Received(item.at, item.pairs[room:])
            chunks.append([])
            room = CHUNK
        chunks[-1].append(item)
        room -= _size(item)
        if room == 0:
            chunks.append([])
            room = CHUNK
    return [chunk for chunk in chunks if chunk]


def _size(item: Received | Sent) -> int:
    """How many messages an item holds."""
    return len(item.pairs) if isinstance(item, Received) else 1
