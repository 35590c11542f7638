"""What reaches the shell's screen from any thread, one network read at a time.

On the event loop a line goes to the display at once; the reader thread's lines
are gathered and handed over when its read ends, with how many messages came from
whom, so a flood costs one hand-over per read. Deliveries are made into the
terminal's text in one pass, muted senders' left out (every message is kept).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from .. import texts
from ..session import Deliveries, Event
from .archive import Archive
from .conversation_state import Conversations
from .deliveries import DeliveryRenderer, heard
from .display import Display, Rendered, Shown
from .gather import Gathered
from .stamps import Stamps


class Incoming:
    def __init__(self, display: Display, stamps: Stamps, state: Conversations,
                 archive: Archive) -> None:
        self._display = display
        self._stamps = stamps
        self._state = state
        self._archive = archive
        self._gathered = Gathered(self.end_batch)
        self._deliveries = DeliveryRenderer(display)
        self._mentioned = texts.mention_test("")
        """Whether a body names the user (made again at each login)."""

    def logged_in(self, name: str) -> None:
        self._mentioned = texts.mention_test(name)

    def show(self, lines: Sequence[Shown]) -> None:
        """On the event loop, to the display; elsewhere, gathered until :meth:`end_batch`.

        The reader thread thus hands over the lines of one network read at once.
        """
        if self._display.on_loop_thread():
            self._display.show(*self._stamps.on(lines))
        else:
            self._gathered.add(list(lines))

    def end_batch(self) -> None:
        """Hand the lines gathered off the event loop to the display at once, and the
        messages' senders to the shell's state in one change."""
        lines, counts = self._gathered.take()
        if lines:
            self._display.show(*self._stamps.on(lines))
        if counts:
            self._display.call_soon(functools.partial(self._state.heard, counts))

    def read(self, events: list[Event], rendered: Callable[[Deliveries], Rendered],
             on_event: Callable[[Event], None]) -> None:
        """A read's events, then :meth:`end_batch`. Deliveries, a flood's lines, are
        made into the terminal's text in one pass and gathered under one lock; any other
        event first has what was gathered handed over, so the order holds."""
        lines: list[Shown] = []
        for event in events:
            if isinstance(event, Deliveries):
                lines.append(rendered(event))
            else:
                self._gathered.add(lines)
                lines = []
                on_event(event)
        self._gathered.add(lines)
        self.end_batch()

    def rendered(self, pairs: Sequence[tuple[str, str]], me: str) -> Rendered:
        """The lines of messages, muted senders' left out; every message is kept, and
        how many came from whom is gathered for the state."""
        self._archive.received(pairs)
        counts = heard(pairs, me)
        self._gathered.add([], counts)
        muted = self._state.muted
        if muted and not muted.isdisjoint(counts):
            pairs = [pair for pair in pairs if pair[0] not in muted]
        return self._deliveries.render(pairs, me, self._mentioned)
