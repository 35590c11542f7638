"""Input history in the user's state directory, the login line left out."""

from __future__ import annotations

import os
from pathlib import Path

from prompt_toolkit.history import FileHistory, InMemoryHistory


def history_path() -> Path:
    """``$XDG_STATE_HOME/chatsh/history``, by default under ``~/.local/state``."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".local", "state")
    return Path(state) / "chatsh" / "history"


class _Gated:
    """Stores lines only once ``recording`` is set (after login)."""

    recording = False

    def append_string(self, string: str) -> None:
        if self.recording:
            super().append_string(string)  # type: ignore[misc]


class GatedFileHistory(_Gated, FileHistory):
    pass


class GatedMemoryHistory(_Gated, InMemoryHistory):
    pass


def chat_history(enabled: bool) -> GatedFileHistory | GatedMemoryHistory:
    """File history when enabled and the directory can be made, else in memory."""
    if enabled:
        path = history_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return GatedFileHistory(str(path))
        except OSError:
            pass
    return GatedMemoryHistory()



