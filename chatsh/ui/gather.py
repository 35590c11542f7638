"""What the reader thread gathers for the shell: lines to show, senders heard from.

The reader adds as it goes; the shell takes all of it at the end of each read
and hands it to the event loop at once, so a flood costs one hand-over per read.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .display import Shown


class Gathered:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[Shown] = []
        self._senders: list[str] = []
        """Senders in arrival order, no name twice in a row."""

    def add(self, lines: list[Shown], senders: Sequence[str] = ()) -> None:
        if lines or senders:
            with self._lock:
                self._lines += lines
                start = 1 if senders and self._senders and self._senders[-1] == senders[0] else 0
                self._senders += senders[start:]

    def take(self) -> tuple[list[Shown], list[str]]:
        with self._lock:
            lines, self._lines = self._lines, []
            senders, self._senders = self._senders, []
        return lines, senders
