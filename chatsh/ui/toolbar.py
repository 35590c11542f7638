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

    def fragments(self) -> StyleAndTextTuples:
        online = (("? online" if self.counted else "online unknown") if self.online is None
                  else f"{self.online} online")
        style = "class:bottom-toolbar." + ("state" if self.state == CONNECTED else "lost")
        latest = islice(reversed(self.unread), 3)
        unread = [("class:bottom-toolbar.unread",
                   "unread: " + ", ".join(f"{sanitize(name)} {self.unread[name]}"
                                          for name in latest)
                   + (f" +{len(self.unread) - 3}" if len(self.unread) > 3 else "")),
                  ("", " | ")] if self.unread else []
        return [("", f" {self.server} | {sanitize(self.user) or '-'} | {online} | "),
                (style, self.state), ("", " | "), *unread,
                ("", f"{time.strftime('%H:%M')} | !help ")]
