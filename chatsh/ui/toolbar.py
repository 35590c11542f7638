"""The bottom toolbar: server, login name, users online, connection state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.utils import get_cwidth

from ..sanitize import sanitize
from .fold import cells

CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"


@dataclass
class Status:
    """What the toolbar shows; the event loop changes it (see conversation_state)."""

    server: str
    user: str = ""
    online: int | None = None
    counted: bool = True
    """False once the server refused the user list: the count is then said unknown."""
    state: str = CONNECTING
    unread: dict[str, int] = field(default_factory=dict)
    """Senders of messages not seen yet, with how many (the latest last)."""
    muted: dict[str, int] = field(default_factory=dict)
    """Muted senders of messages not seen yet, with how many (the latest last)."""

    def fragments(self, columns: int | None = None) -> StyleAndTextTuples:
        """The toolbar, fitted to ``columns`` if given: the unread list first, the
        least useful parts left out first (``!help``, the clock, the muted list, the
        server's address, the count online, the name), then unread senders but the
        latest, then the end of that sender's name; the connection's state always
        stays."""
        online = (("? online" if self.counted else "online unknown") if self.online is None
                  else f"{self.online} online")
        style = "class:bottom-toolbar." + ("state" if self.state == CONNECTED else "lost")
        shown = 3
        parts = self._parts(online, style, shown)
        while columns is not None and _width(parts) > columns:
            droppable = [part for part in parts if part[0]]
            if droppable:
                parts.remove(max(droppable, key=itemgetter(0)))
            elif shown > 1 and len(self.unread) > 1:
                shown = 1
                kept = {rank for rank, _ in parts}
                parts = [part for part in self._parts(online, style, shown) if part[0] in kept]
            else:
                break
        if columns is not None and self.unread and _width(parts) > columns:
            parts[0] = (0, _counted("class:bottom-toolbar.unread", "unread", self.unread,
                                    shown, cut=_width(parts) - columns))
        joined: StyleAndTextTuples = [("", " ")]
        for index, (_, fragments) in enumerate(parts):
            joined += [("", " | ")] if index else []
            joined += fragments
        return [*joined, ("", " ")]

    def _parts(self, online: str, style: str, shown: int) -> list[tuple[int, StyleAndTextTuples]]:
        """The toolbar's parts in their order, each with its rank in leaving out (the
        highest goes first; 0 never goes)."""
        parts: list[tuple[int, StyleAndTextTuples]] = []
        if self.unread:
            parts.append((0, _counted("class:bottom-toolbar.unread", "unread", self.unread,
                                      shown)))
        parts += [(4, [("", self.server)]), (2, [("", sanitize(self.user) or "-")]),
                  (3, [("", online)]), (0, [(style, self.state)])]
        if self.muted:
            parts.append((5, _counted("", "muted", self.muted, 3)))
        return [*parts, (6, [("", time.strftime("%H:%M"))]), (7, [("", "!help")])]


def _width(parts: list[tuple[int, StyleAndTextTuples]]) -> int:
    """The columns the parts take, joined as the toolbar joins them."""
    return 3 * len(parts) - 1 + sum(cells(text) for _, fragments in parts
                                    for _, text, *_ in fragments)


def _counted(style: str, label: str, counts: dict[str, int], shown: int, cut: int = 0
             ) -> StyleAndTextTuples:
    """``unread: frank 8, bob 2 +3``: the latest ``shown`` senders and their counts,
    the latest's name ``cut`` cells shorter when asked (``unread: fra… 8``)."""
    named = [f"{sanitize(name)} {counts[name]}" for name in islice(reversed(counts), shown)]
    if cut:
        latest_name = next(reversed(counts))
        named[0] = f"{_clipped(sanitize(latest_name), cut)} {counts[latest_name]}"
    latest = ", ".join(named)
    more = f" +{len(counts) - shown}" if len(counts) > shown else ""
    return [(style, f"{label}: {latest}{more}")]


def _clipped(name: str, cut: int) -> str:
    """``name`` ``cut`` cells shorter and ended with an ellipsis (one character of it
    kept at least; an accent stays with its letter)."""
    room = max(cells(name) - cut - 1, 1)
    end = taken = 0
    while end < len(name) and (taken + get_cwidth(name[end]) <= room or not end):
        taken += get_cwidth(name[end])
        end += 1
    return name[:end] + "…"
