"""What a script's ``!expect`` waits for, and the window of lines it looks in.

An expectation is plain text to find inside a printed line, or ``/REGEX/`` (a
Python regular expression searched in the line). :class:`ExpectWindow` holds
the lines printed since the last expectation was met, as the fragments that
were printed (a line's text is joined only when an expectation looks at it, so
a script without ``!expect`` copies nothing); the reader thread adds lines, the
script's thread waits. No I/O.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from .texts import Fragments, plain

DEFAULT_EXPECT_TIMEOUT = 10.0
WINDOW_LINES = 10_000
"""Lines an expectation can look back on; older ones fall out of the window."""


@dataclass(frozen=True, slots=True)
class Expectation:
    text: str
    regex: re.Pattern[str] | None = None

    def matches(self, line: str) -> bool:
        if self.regex is not None:
            return self.regex.search(line) is not None
        return self.text in line


def parse_expectation(text: str) -> Expectation:
    """``TEXT`` or ``/REGEX/``; raises ValueError with a one-line reason."""
    text = text.strip()
    if not text:
        raise ValueError("!expect needs the text to wait for: !expect TEXT or !expect /REGEX/")
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        try:
            return Expectation(text, re.compile(text[1:-1]))
        except re.error as exc:
            raise ValueError(f"!expect: not a regular expression: {exc}") from None
    return Expectation(text)


def parse_seconds(text: str) -> float:
    """A non-negative number of seconds; raises ValueError with a one-line reason."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"!wait needs a number of seconds, not {text.strip()!r}") from None
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"!wait needs a number of seconds from 0 up, not {text.strip()}")
    return seconds


class ExpectWindow:
    """Lines printed since the last expectation was met, safe across threads."""

    def __init__(self, size: int = WINDOW_LINES) -> None:
        self._lines: deque[Fragments] = deque(maxlen=size)
        self._added = 0
        """Lines added ever: the first in the window is number ``_added - len(_lines)``."""
        self._changed = threading.Condition()
        self._awaited: Expectation | None = None
        """What a waiter looks for: the adding thread wakes it only for a match."""

    def add(self, line: Fragments) -> None:
        with self._changed:
            self._lines.append(line)
            self._added += 1
            if self._awaited is not None and self._awaited.matches(plain(line)):
                self._changed.notify_all()

    def wake(self) -> None:
        """Wake a waiter to look again (the connection ended, the script failed)."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, expectation: Expectation, timeout: float,
                 give_up: threading.Event) -> str | None:
        """The first matching line (the window then starts after it), or None.

        None when ``timeout`` seconds pass or ``give_up`` is set first.
        """
        deadline = time.monotonic() + timeout
        checked = 0  # lines looked at, counted as _added counts them
        with self._changed:
            self._awaited = expectation
            try:
                while True:
                    first = self._added - len(self._lines)
                    for index in range(max(checked - first, 0), len(self._lines)):
                        line = plain(self._lines[index])
                        if expectation.matches(line):
                            for _ in range(index + 1):
                                self._lines.popleft()
                            return line
                    checked = self._added
                    left = deadline - time.monotonic()
                    if left <= 0 or give_up.is_set():
                        return None
                    self._changed.wait(left)
            finally:
                self._awaited = None

    def last(self, count: int) -> list[str]:
        with self._changed:
            return [plain(line) for line in list(self._lines)[-count:]]
