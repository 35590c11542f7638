"""The shell's state about the people it talks with, with one owner on the event loop.

Who is online and who may be completed (the roster), whose messages are unread and how
many, the bell and the window title, the toolbar, whom the user wrote to lately, whether
the terminal has the focus: the shell tells :class:`Conversations` what happened and
asks it what to show. Every method runs on the event loop; the reader thread hands its
events over (counted per read), so no state here is ever changed by two threads.

A message asks for attention (bell, title, toolbar) unless its sender is muted or, while
the terminal has the focus, someone the user is talking with: the ``!to`` partner, the
``@name`` being typed, anyone written to in the last minute. Without the focus every
message does. Enter on an empty line marks everything read; writing to someone marks
theirs read. When a user list shows that someone the user talked with came or left
since the last list, a dim line says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .. import texts
from .attention import Attention
from .completer import Roster
from .toolbar import CONNECTED, DISCONNECTED, Status

CONVERSATION = 60.0
"""Seconds after writing to someone during which their messages ask for no attention
(while the terminal has the focus)."""
WRITTEN_KEPT = 1024
"""People written to whose time is kept; past it the oldest are forgotten."""


class Conversations:
    """The roster, the toolbar's status, unread counts and the bell, for one shell.

    ``partner`` and ``draft`` give the ``!to`` partner and the line being typed (whoever
    they name is in a conversation with the user); ``redraw`` shows a changed toolbar,
    ``show`` a line.
    """

    def __init__(self, server: str, attention: Attention | None,
                 partner: Callable[[], str | None], draft: Callable[[], str],
                 redraw: Callable[[], None], show: Callable[[texts.Fragments], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.roster = Roster()
        self.status = Status(server)
        self._attention = attention
        self._partner = partner
        self._draft = draft
        self._redraw = redraw
        self._show = show
        self._clock = clock
        self._listed = False
        """Whether a user list came (the next one is compared with it)."""
        self.last_heard = -CONVERSATION
        """When the last messages came (the clock's time)."""
        self._written: dict[str, float] = {}
        """Whom the user wrote to, and when (the latest last)."""
        self._unread_total = 0
        self.muted: frozenset[str] = frozenset()
        """Senders whose messages stay off the screen (the reader thread reads it; only
        the event loop puts another set in its place)."""
        self.focused = True
        """Whether the terminal has the focus (as it last reported; True if it never did)."""

    def restore(self, recent: list[str], muted: list[str]) -> None:
        """What the store remembers: recent contacts (the latest first), muted senders."""
        self.roster.remember(list(reversed(recent)))
        self.muted = frozenset(muted)

    # --- the connection ------------------------------------------------------

    def logged_in(self, name: str) -> None:
        self.status.user, self.status.state = name, CONNECTED
        self.roster.me = name
        self._redraw()

    def disconnected(self) -> None:
        """The connection is gone: the count of users online is not known any more."""
        self.status.state, self.status.online = DISCONNECTED, None
        self._redraw()

    def reconnecting(self, attempt: int) -> None:
        self.status.state = f"reconnecting, attempt {attempt}"
        self._redraw()

    @property
    def state(self) -> str:
        """The connection's state as the toolbar says it."""
        return self.status.state

    @property
    def connected(self) -> bool:
        return self.status.state == CONNECTED

    def quiet(self, seconds: float) -> bool:
        """Whether no message came for ``seconds``."""
        return self._clock() - self.last_heard >= seconds

    # --- people ----------------------------------------------------------------

    def listed(self, names: Iterable[str]) -> None:
        """A user list: who is online now; a dim line for each person the user talked
        with who came or left since the last list."""
        names = tuple(names)
        before = self.roster.online if self._listed else None
        self.roster.listed(names)
        self.status.online, self.status.counted = len(names), True
        self._listed = True
        if before is not None:
            self._came_and_left(before, self.roster.online)
        self._redraw()

    def _came_and_left(self, before: dict[str, None], after: dict[str, None]) -> None:
        for name in self.roster.recent:
            if name == self.roster.me or (name in before) == (name in after):
                continue
            self._show([*texts.untrusted_name(name, "class:dim"),
                        ("class:dim", " is online." if name in after else " went offline.")])

    def unlisted(self) -> None:
        """The server has no user list: its count is unknown, names are those seen."""
        self.status.online, self.status.counted = None, False
        self._redraw()

    def heard(self, counts: dict[str, int]) -> None:
        """Messages came, ``counts`` of them from each sender (the user not among them):
        senders are online and completed at once; a message from someone the user is
        not in a conversation with is unread, and the batch rings the bell once."""
        senders = list(counts)
        self.last_heard = self._clock()
        added = self._online(senders)
        muted = [name for name in senders if name in self.muted]
        for name in muted:  # counted, never alerting
            self.status.muted[name] = self.status.muted.pop(name, 0) + counts[name]
        alerting = [name for name in senders if name not in self.muted
                    and (not self.focused or not self.in_conversation(name))]
        if alerting and self._attention is not None:
            unread = self.status.unread
            for name in alerting:  # the latest last: one heard from again moves to the end
                count = counts[name] + unread.pop(name, 0)
                unread[name] = count
                self._unread_total += counts[name]
            self._attention.alert(self._unread_total)
        if added or alerting or muted:
            self._redraw()

    def reached(self, name: str) -> None:
        """The server took a message to ``name`` (SEND-OK): ``name`` is online."""
        if self._online([name]):
            self._redraw()

    def _online(self, names: list[str]) -> int:
        """``names`` are online: in the roster and counted; how many were new."""
        added = self.roster.heard_from(names)
        if added and self.status.online is not None:
            self.status.online += added
        return added

    def mute(self, name: str, muted: bool) -> None:
        """Keep ``name``'s messages off the screen (counted all the same), or not."""
        self.muted = self.muted | {name} if muted else self.muted - {name}
        if not muted and self.status.muted.pop(name, None) is not None:
            self._redraw()

    def focus(self, focused: bool) -> None:
        """The terminal got the focus, or lost it."""
        self.focused = focused

    def wrote_to(self, name: str) -> None:
        """The user sent ``name`` a message: a conversation for the next minute, and
        ``name``'s messages are read."""
        self.roster.remember([name])
        self._written.pop(name, None)
        self._written[name] = self._clock()
        if len(self._written) > WRITTEN_KEPT:
            del self._written[next(iter(self._written))]
        count = self.status.unread.pop(name, 0)
        if not count:
            return
        self._unread_total -= count
        if self._attention is not None:
            if self.status.unread:
                self._attention.recount(self._unread_total)
            else:
                self._attention.clear()
        self._redraw()

    def in_conversation(self, name: str) -> bool:
        """Whether the user talks with ``name``: the ``!to`` partner, the ``@name`` of
        the draft, or anyone written to within the last minute."""
        draft = self._draft().lstrip()
        if name == self._partner() or draft == f"@{name}" or draft.startswith(f"@{name} "):
            return True
        when = self._written.get(name)
        return when is not None and self._clock() - when < CONVERSATION

    def seen(self) -> None:
        """Enter on an empty line (or leaving): nothing is unread any more."""
        if not self.status.unread and not self.status.muted:
            return
        self.status.unread, self.status.muted = {}, {}
        self._unread_total = 0
        if self._attention is not None:
            self._attention.clear()
        self._redraw()

    @property
    def unread(self) -> int:
        """Messages not seen yet."""
        return self._unread_total
