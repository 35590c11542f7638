"""The bottom toolbar: server, login name, users online, connection state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import islice

from prompt_toolkit.formatted_text import StyleAndTextTuples

from ..sanitize import sanitize

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

    def fragments(self) -> StyleAndTextTuples:
        online = (("? online" if self.counted else "online unknown") if self.online is None
                  else f"{self.online} online")
        style = "class:bottom-toolbar." + ("state" if self.state == CONNECTED else "lost")
        return [("", f" {self.server} | {sanitize(self.user) or '-'} | {online} | "),
                (style, self.state), ("", " | "),
                *_counted("class:bottom-toolbar.unread", "unread", self.unread),
                *_counted("", "muted", self.muted),
                ("", f"{time.strftime('%H:%M')} | !help ")]


def _counted(style: str, label: str, counts: dict[str, int]) -> StyleAndTextTuples:
    """``unread: frank 8, bob 2 +3 | ``: the latest three senders and their counts."""
    if not counts:
        return []
    latest = ", ".join(f"{sanitize(name)} {counts[name]}"
                       for name in islice(reversed(counts), 3))
    more = f" +{len(counts) - 3}" if len(counts) > 3 else ""
    return [(style, f"{label}: {latest}{more}"), ("", " | ")]
