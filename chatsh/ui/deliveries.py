"""Messages made into the terminal's text in one pass, as a flood needs.

The start of a message's line (``From <sender>: `` and the body's style) is made
once per sender, through the display's own rendering of the fragments
:func:`texts.delivery` gives; a printable body then follows as it came. Any other
body (one with characters to escape, an empty one) takes the fragments' way, so
the text is the same either way, byte for byte.
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from operator import itemgetter

from prompt_toolkit.utils import get_cwidth

from .. import texts
from .display import Display, Rendered
from .fold import MAX_FOLDED, cells, layout, needs

MAX_SENDERS = 4096
"""Senders whose line starts are kept; past it they are made afresh."""
PAIR_COST = 240
"""Bytes a message's pair takes, besides its characters: the tuple, its place in the
list, the headers of the sender's and the body's strings."""

Opening = tuple[str, str, str, int, bool]
"""A line's start as the terminal's text, its end, its text alone, the terminal cells
it takes, and whether it is all ASCII."""


_sender = itemgetter(0)


def heard(pairs: Sequence[tuple[str, str]], me: str) -> dict[str, int]:
    """How many of the messages came from each sender, ``me`` left out, the latest sender
    last (counted in C: 0.6 ms for 10,000 messages)."""
    counts = Counter(map(_sender, pairs))
    counts.pop(me, None)
    if len(counts) < 2:
        return counts
    latest: dict[str, None] = {}
    for sender, _ in reversed(pairs):
        if sender in counts:
            latest[sender] = None
            if len(latest) == len(counts):
                break
    return {name: counts[name] for name in reversed(latest)}


class DeliveryRenderer:
    """Messages to :class:`Rendered` text for one display."""

    def __init__(self, display: Display) -> None:
        self._display = display
        self._openings: dict[str, tuple[Opening, Opening | None]] = {}
        """Per sender: the line's start with the body's style, and with the mention's
        (made at the first mention: each costs 20 µs, and most senders never mention)."""
        self._hung: dict[tuple[int, bool], tuple[str, str]] = {}
        """The start and end of a folded message's further rows, per indent and style."""

    def render(self, pairs: Sequence[tuple[str, str]], me: str,
               mentioned: Callable[[str], bool]) -> Rendered:
        """The lines of messages (a body naming ``me`` from another is a mention)."""
        parts: list[str] = []
        append = parts.append
        size = widest = 0
        last = None
        openings = self._openings
        head: tuple[Opening, Opening | None] = (("", "", "", 0, True), None)
        other = False
        display = self._display
        columns = display.columns()
        for sender, body in pairs:
            if sender != last:
                last = sender
                head = openings.get(sender) or self._opening(sender)
                other = sender != me
            highlight = other and mentioned(body)
            if body and body.isprintable():
                start = head[highlight]
                if start is None:
                    start = self._mention_opening(sender, head[0])
                opening, closing, start_text, wide, ascii = start
                if ascii and body.isascii():
                    wide += len(body)
                elif len(body) <= MAX_FOLDED:  # the last column is left free (fold.py)
                    wide += get_cwidth(body) + 1
                else:  # left to the terminal to wrap: not worth measuring
                    wide += 2 * len(body)
                if wide <= columns or len(body) + len(start_text) > MAX_FOLDED:
                    append(opening)
                    append(body)
                    append(closing)
                else:
                    append(self._folded(sender, body, highlight, start, columns))
                size += len(start_text) + len(body)
            else:
                line = texts.delivery(sender, body, highlight)
                wide = needs(line)
                append(display.folded_text(line, columns))
                size += texts.width(line)
            if wide > widest:
                widest = wide
        text = "".join(parts)  # the pairs' characters take at most what the text takes
        return Rendered(text, size, len(pairs), 2 * sys.getsizeof(text) + PAIR_COST * len(pairs),
                        functools.partial(self.lines, pairs, me, mentioned), columns, widest)

    @staticmethod
    def lines(pairs: Sequence[tuple[str, str]], me: str, mentioned: Callable[[str], bool]
              ) -> list[texts.Fragments]:
        """The same lines as fragments."""
        return [texts.delivery(sender, body, sender != me and mentioned(body))
                for sender, body in pairs]

    def _folded(self, sender: str, body: str, highlight: bool, start: Opening,
                columns: int) -> str:
        """A message's rows (fold.py) as text: the first from the line's start, the others
        from their indent, in the body's style (the fragments' way when the first row
        ends within the name)."""
        opening, closing, start_text, _, _ = start
        head = len(start_text)
        indent, spans = layout(start_text + body, head, columns)
        if spans[0][1] <= head:
            return self._display.folded_text(texts.delivery(sender, body, highlight), columns)
        hung = self._hung.get((indent, highlight))
        if hung is None:
            hung = self._hung[indent, highlight] = self._display.opening(
                [("", " " * indent), (texts.body_style(highlight), "")])
        parts = [opening, body[:spans[0][1] - head], closing]
        for begin, end in spans[1:]:
            parts += (hung[0], body[begin - head:end - head], hung[1])
        return "".join(parts)

    def _opening(self, sender: str) -> tuple[Opening, Opening | None]:
        if len(self._openings) >= MAX_SENDERS:
            self._openings.clear()
        pair = self._openings[sender] = (self._start(sender, False), None)
        return pair

    def _mention_opening(self, sender: str, plain: Opening) -> Opening:
        mention = self._start(sender, True)
        self._openings[sender] = (plain, mention)
        return mention

    def _start(self, sender: str, highlight: bool) -> Opening:
        line = [*texts.delivery_head(sender), (texts.body_style(highlight), "")]
        opening, closing = self._display.opening(line)
        start = texts.plain(line)
        return opening, closing, start, cells(start), start.isascii()
