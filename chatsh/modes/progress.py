"""A one-line progress report on a terminal's stderr for long scripts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    from typing import TextIO

DELAY = 0.5
"""Seconds before the line first shows, so short scripts never draw it."""
INTERVAL = 0.1


class Progress:
    """Redraws ``sent N, answered M`` in place until stopped; only on a terminal."""

    def __init__(self, err: TextIO, write: Callable[[str], None],
                 counts: Callable[[], tuple[int, int]]) -> None:
        """``err`` tells whether stderr is a terminal; ``write`` puts text on it through
        the run's one writer, so the line never tears a diagnostic apart."""
        self._err = err
        self._write = write
        self._counts = counts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatsh-progress", daemon=True)
        self._shown = False

    def __enter__(self) -> Progress:
        if self._err.isatty():
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._shown:
            self._write("\r\x1b[K")

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(INTERVAL):
            if time.monotonic() - started < DELAY:
                continue
            sent, answered = self._counts()
            self._write(f"\rchatsh: sent {sent}, answered {answered}\x1b[K")
            self._shown = True
