"""What the reader thread gathers for the shell: lines to show, messages per sender.

The reader adds as it goes; the shell takes all of it at the end of each read
and hands it to the event loop at once, so a flood costs one hand-over per read.
A read whose lines take more than :data:`GATHER_STEP` bytes of memory is handed
over in steps, so that the display's bound holds it too (256 KiB of one-character
unknown lines are 131,072 lines of fragments: 30 MiB).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .display import Shown, measure

GATHER_STEP = 1024 * 1024
"""Bytes of gathered lines past which they are handed over before the read ends."""

Heard = dict[str, int]
"""How many messages came from each sender (the user not among them)."""


class Gathered:
    def __init__(self, hand_over: Callable[[], None]) -> None:
        self._hand_over = hand_over
        """Called, on the thread that adds, when the lines take more than GATHER_STEP:
        it takes them."""
        self._lock = threading.Lock()
        self._lines: list[Shown] = []
        self._heard: Heard = {}
        self._cost = 0
        """Bytes the gathered lines take."""

    def add(self, lines: list[Shown], heard: Heard | None = None) -> None:
        if lines or heard:
            cost = measure(lines)[1]
            with self._lock:
                self._lines += lines
                if heard:
                    counts = self._heard
                    for name, count in heard.items():  # the latest sender last
                        counts[name] = counts.pop(name, 0) + count
                self._cost += cost
                full = self._cost > GATHER_STEP
            if full:
                self._hand_over()

    def take(self) -> tuple[list[Shown], Heard]:
        with self._lock:
            lines, self._lines = self._lines, []
            heard, self._heard = self._heard, {}
            self._cost = 0
        return lines, heard
