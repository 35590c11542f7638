"""Stored messages shown again: the lines of ``!last`` and ``!search``.

A stored message is a line as a chat log has it, ``2026-12-07 14:03 <bob> see you``,
one the user sent with whom it went to, ``<alice> @bob on my way``. What the store
gives back came from the network once: names and bodies are escaped as any received
text is, and a long body is cut (``!last`` is for finding, not for reading megabytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import texts
from ..sanitize import quoted, sanitize
from ..store import BODY_RETURNED, Stored
from .archive import Archive, Restored
from .conversation_state import Conversations

SHOWN_LENGTH = BODY_RETURNED
"""Characters of a stored body shown; the rest is counted."""
DAY_AND_TIME = "%Y-%m-%d %H:%M"


def stored_line(message: Stored, me: str) -> texts.Fragments:
    """One stored message as a line: when, who wrote it, to whom if it was the user,
    dim and marked ``(not delivered)`` if the server refused it."""
    sender = me if message.outgoing else message.peer
    body = message.body
    more = message.length - SHOWN_LENGTH
    line: texts.Fragments = [
        ("class:dim", time.strftime(DAY_AND_TIME, time.localtime(message.at)) + " "),
        ("class:from", "<"), *texts.untrusted_name(sender, texts.sender_style(sender)),
        ("class:from", "> ")]
    if message.outgoing:
        line += [*texts.untrusted_name("@" + message.peer, "class:user"), ("", " ")]
    line += texts.untrusted(body[:SHOWN_LENGTH] if more > 0 else body,
                            "class:dim" if message.refused else "class:body")
    if more > 0:
        line.append(("class:dim", f" ... ({more} more characters)"))
    if message.refused:
        line.append(("class:dim", " (not delivered)"))
    return line


def last_lines(found: Sequence[Stored], peer: str | None, me: str) -> list[texts.Fragments]:
    """``!last``'s answer: a heading and the messages, oldest first."""
    with_whom = f" with {sanitize(peer)}" if peer is not None else ""
    if not found:
        return [texts.system(f"No messages{with_whom} are kept.")]
    count = len(found)
    heading = f"The last {count} messages{with_whom}:" if count > 1 else (
        f"The last message{with_whom}:")
    return [texts.system(heading), *(stored_line(message, me) for message in found)]


def search_lines(found: Sequence[Stored], total: int, text: str, me: str
                 ) -> list[texts.Fragments]:
    """``!search``'s answer: how many messages hold ``text``, and the last of them."""
    what = quoted(text.strip())
    if not found:
        return [texts.system(f"No kept message holds {what}.")]
    heading = (f"{total} messages hold {what}:" if total == len(found) and total > 1
               else f"1 message holds {what}:" if total == 1
               else f"{total} messages hold {what}; the last {len(found)}:")
    return [texts.system(heading), *(stored_line(message, me) for message in found)]


STORE_WAIT = 1.0
"""Seconds the first prompt waits for the message store."""
SEARCH_SHOWN = 50
"""Matches ``!search`` shows, the last ones."""
NO_INDEX = ("(This Python's SQLite has no FTS5, so !search looks for the text as written, "
            "reading every message.)")


class Recall:
    """``!last``, ``!search``, ``!mute``: questions to the archive, whose answers are
    shown on the event loop; ``me`` gives the login name."""

    def __init__(self, archive: Archive, state: Conversations,
                 show: Callable[..., None], me: Callable[[], str],
                 talk_to: Callable[[str], None]) -> None:
        self._archive = archive
        self._state = state
        self._show = show
        self._me = me
        self._talk_to = talk_to
        self._told_no_index = False

    async def open(self, path: Path) -> None:
        """Open the message store at ``path``, waiting a moment for what it remembers
        (recent contacts, the ``!to`` partner, muted senders) before the first prompt."""
        if not self._archive.open:
            return
        remembered = asyncio.Event()

        def opened(answer: Restored | str) -> None:
            remembered.set()
            if isinstance(answer, str):
                self._show(texts.error(answer))
                return
            self._state.restore(answer.recent, answer.muted)
            if answer.partner:
                self._talk_to(answer.partner)

        self._archive.start(path, opened)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(remembered.wait(), STORE_WAIT)

    def last(self, peer: str | None, count: int) -> None:
        def answer(found: list[Stored] | str) -> None:
            self._lines(found if isinstance(found, str) else last_lines(found, peer, self._me()))
        self._archive.ask(lambda store: store.last(peer, count), answer)

    def search(self, text: str) -> None:
        def answer(result: tuple[list[Stored], int, bool] | str) -> None:
            if isinstance(result, str):
                self._lines(result)
                return
            found, total, full_text = result
            if not full_text and not self._told_no_index:
                self._told_no_index = True
                self._show([("class:hint", NO_INDEX)])
            self._lines(search_lines(found, total, text, self._me()))
        self._archive.ask(lambda store: (*store.search(text, SEARCH_SHOWN), store.full_text),
                          answer)

    def mute(self, name: str, muted: bool) -> None:
        shown = sanitize(name)
        if not muted and name not in self._state.muted:
            self._show(texts.system(f"{shown} is not muted."))
            return
        self._state.mute(name, muted)
        self._archive.muted(name, muted)
        self._show(texts.system(
            f"{shown}'s messages stay off the screen now (kept, and counted in the toolbar); "
            f"!unmute {shown} shows them again." if muted
            else f"{shown}'s messages are shown again."))

    def _lines(self, lines: list[texts.Fragments] | str) -> None:
        if isinstance(lines, str):
            self._show([("class:hint", f"Cannot look: {lines}.")])
            return
        self._show(*lines)
