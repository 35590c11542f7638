"""The bottom toolbar: server, login name, users online, connection state."""

from __future__ import annotations

from dataclasses import dataclass

from prompt_toolkit.formatted_text import StyleAndTextTuples

from ..sanitize import sanitize


@dataclass
class Status:
    """What the toolbar shows; the socket thread updates it, rendering only reads."""

    server: str
    user: str = ""
    online: int | None = None
    connected: bool = False

    def fragments(self) -> StyleAndTextTuples:
        online = "?" if self.online is None else str(self.online)
        state = ("class:bottom-toolbar.state", "connected") if self.connected else (
            "class:bottom-toolbar.lost", "disconnected")
        return [("", f" {self.server} | {sanitize(self.user) or '-'} | {online} online | "),
                state, ("", " | !help ")]
