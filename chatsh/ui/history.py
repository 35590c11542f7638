"""Input history in the user's state directory, the login line left out.

A history file that cannot be used (a directory, not writable, a full disk)
never disturbs the prompt: history then lives in memory, with one warning.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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
    def load_history_strings(self) -> Iterable[str]:
        try:
            yield from super().load_history_strings()
        except OSError:
            return

    def store_string(self, string: str) -> None:
        try:
            super().store_string(string)
        except OSError:
            pass  # the line stays in this session's history all the same


class GatedMemoryHistory(_Gated, InMemoryHistory):
    pass


def chat_history(enabled: bool) -> tuple[GatedFileHistory | GatedMemoryHistory, str | None]:
    """File history when enabled and usable, else in memory with the reason why."""
    if not enabled:
        return GatedMemoryHistory(), None
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        return GatedMemoryHistory(), (f"History is kept in memory only: cannot use "
                                      f"{path}: {exc.strerror or exc}.")
    return GatedFileHistory(str(path)), None
