"""Input history in the user's state directory, the login line left out.

What the history stores and recalls is the text that was sent: a long paste is
written whole to the file and comes back behind a marker (:mod:`.paste`), which
Enter expands again. A line longer than :data:`MAX_ENTRY` is not kept.

The file is readable by its owner only (0600, in a folder created 0700): it holds
every line typed. A history file that cannot be used (a directory, a FIFO, not
writable, a full disk) never disturbs the prompt: history then lives in memory, with
one warning.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit.history import FileHistory, InMemoryHistory

from ..private import open_private
from ..sanitize import whole_characters
from .paste import Pastes

MAX_ENTRY = 1024 * 1024
"""Characters past which a line sent is not kept in the history (the whole file is read
at each start)."""


def history_path() -> Path:
    """``$XDG_STATE_HOME/chatsh/history``, by default under ``~/.local/state``."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".local", "state")
    return Path(state) / "chatsh" / "history"


class _Gated:
    """Stores lines only once ``recording`` is set (after login), each as the text it
    stands for, and shows a long one as a marker."""

    recording = False
    pastes: Pastes
    _loaded_strings: list[str]

    def append_string(self, string: str) -> None:
        text = self.pastes.text_of(string)
        if not self.recording or len(text) > MAX_ENTRY:
            return
        self.pastes.keep(string)
        self._loaded_strings.insert(0, string)
        self.store_string(text)  # type: ignore[attr-defined]


class GatedFileHistory(_Gated, FileHistory):
    def __init__(self, filename: str, pastes: Pastes) -> None:
        super().__init__(filename)
        self.pastes = pastes

    def load_history_strings(self) -> Iterable[str]:
        try:
            for text in super().load_history_strings():
                yield self.pastes.recalled(text)
        except OSError:
            return

    def store_string(self, string: str) -> None:
        try:
            super().store_string(whole_characters(string))
        except OSError:
            pass  # the line stays in this session's history all the same


class GatedMemoryHistory(_Gated, InMemoryHistory):
    def __init__(self, pastes: Pastes) -> None:
        super().__init__()
        self.pastes = pastes


def chat_history(enabled: bool, pastes: Pastes
                 ) -> tuple[GatedFileHistory | GatedMemoryHistory, str | None]:
    """File history when enabled and usable, else in memory with the reason why; the
    long pastes of its lines are held in ``pastes``."""
    if not enabled:
        return GatedMemoryHistory(pastes), None
    path = history_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(open_private(path, os.O_WRONLY | os.O_APPEND)[0])
    except OSError as exc:
        return GatedMemoryHistory(pastes), (f"History is kept in memory only: cannot use "
                                      f"{path}: {exc.strerror or exc}.")
    return GatedFileHistory(str(path), pastes), None
