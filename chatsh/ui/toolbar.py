"""The bottom toolbar: server, login name, users online, connection state."""

from __future__ import annotations

from dataclasses import dataclass

from prompt_toolkit.formatted_text import StyleAndTextTuples

from ..sanitize import sanitize

CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"


@dataclass
class Status:
    """What the toolbar shows; the socket thread updates it, rendering only reads."""

    server: str
    user: str = ""
    online: int | None = None
    state: str = CONNECTING

    def fragments(self) -> StyleAndTextTuples:
        online = "?" if self.online is None else str(self.online)
        style = "class:bottom-toolbar." + ("state" if self.state == CONNECTED else "lost")
        return [("", f" {self.server} | {sanitize(self.user) or '-'} | {online} online | "),
                (style, self.state), ("", " | !help ")]
