"""What the reader thread gathers for the shell: lines to show, messages per sender.

The reader adds as it goes; the shell takes all of it at the end of each read
and hands it to the event loop at once, so a flood costs one hand-over per read.
"""

from __future__ import annotations

import threading

from .display import Shown

Heard = dict[str, int]
"""How many messages came from each sender (the user not among them)."""


class Gathered:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[Shown] = []
        self._heard: Heard = {}

    def add(self, lines: list[Shown], heard: Heard | None = None) -> None:
        if lines or heard:
            with self._lock:
                self._lines += lines
                if heard:
                    counts = self._heard
                    for name, count in heard.items():  # the latest sender last
                        counts[name] = counts.pop(name, 0) + count

    def take(self) -> tuple[list[Shown], Heard]:
        with self._lock:
            lines, self._lines = self._lines, []
            heard, self._heard = self._heard, {}
        return lines, heard
