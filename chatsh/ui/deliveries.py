"""Messages made into the terminal's text in one pass, as a flood needs.

The start of a message's line (``From <sender>: `` and the body's style) is made
once per sender, through the display's own rendering of the fragments
:func:`texts.delivery` gives; a printable body then follows as it came. Any other
body (one with characters to escape, an empty one) takes the fragments' way, so
the text is the same either way, byte for byte.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from .. import texts
from .display import Display, Rendered

MAX_SENDERS = 4096
"""Senders whose line starts are kept; past it they are made afresh."""

Opening = tuple[str, str, int]
"""A line's start as text, its end, and its width without escape codes."""


class DeliveryRenderer:
    """Messages to :class:`Rendered` text for one display."""

    def __init__(self, display: Display) -> None:
        self._display = display
        self._openings: dict[str, tuple[Opening, Opening]] = {}
        """Per sender: the line's start with the body's style, and with the mention's."""

    def render(self, pairs: Sequence[tuple[str, str]], me: str,
               mentioned: Callable[[str], bool], senders: list[str]) -> Rendered:
        """The lines of messages (a body naming ``me`` from another is a mention); each
        sender other than ``me`` joins ``senders``, no name twice in a row."""
        parts: list[str] = []
        append = parts.append
        size = 0
        last = None
        openings = self._openings
        head = (("", "", 0), ("", "", 0))
        other = False
        for sender, body in pairs:
            if sender != last:
                last = sender
                head = openings.get(sender) or self._opening(sender)
                other = sender != me
                if other and (not senders or senders[-1] != sender):
                    senders.append(sender)
            highlight = other and mentioned(body)
            if body and body.isprintable():
                opening, closing, width = head[highlight]
                append(opening)
                append(body)
                append(closing)
                size += width + len(body)
            else:
                line = texts.delivery(sender, body, highlight)
                append(self._display.line_text(line))
                size += texts.width(line)
        return Rendered("".join(parts), size, len(pairs),
                        functools.partial(self.lines, pairs, me, mentioned))

    @staticmethod
    def lines(pairs: Sequence[tuple[str, str]], me: str, mentioned: Callable[[str], bool]
              ) -> list[texts.Fragments]:
        """The same lines as fragments."""
        return [texts.delivery(sender, body, sender != me and mentioned(body))
                for sender, body in pairs]

    def _opening(self, sender: str) -> tuple[Opening, Opening]:
        if len(self._openings) >= MAX_SENDERS:
            self._openings.clear()
        pair = self._openings[sender] = (self._start(sender, False), self._start(sender, True))
        return pair

    def _start(self, sender: str, highlight: bool) -> Opening:
        line = [*texts.delivery_head(sender), (texts.body_style(highlight), "")]
        opening, closing = self._display.opening(line)
        return opening, closing, texts.width(line)
