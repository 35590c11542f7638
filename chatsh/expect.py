"""What a script's ``!expect`` waits for, and the window of lines it looks in.

An expectation is plain text to find inside a printed line, or ``/REGEX/`` (a
regular expression searched in the line, in the syntax of Python's ``re``; the
``regex`` package runs it, because its search can be given a deadline: a pattern
that backtracks without end still gives up in time). :class:`ExpectWindow` holds
the lines printed since the last expectation was met, as the fragments that were
printed (a line's text is joined only when an expectation looks at it, so a script
without ``!expect`` copies nothing); the reader thread adds lines, the script's
thread searches them, outside the window's lock. No I/O.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .record import Record
from .texts import ScriptLineOut, plain_text

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    import regex

WINDOW_LINES = 10_000
"""Lines an expectation can look back on; older ones fall out of the window."""


class Expectation(Record):
    __slots__ = ("text", "pattern")

    def __init__(self, text: str, pattern: regex.Pattern[str] | None = None) -> None:
        self.text = text
        self.pattern = pattern

    def matches(self, line: str, timeout: float | None = None) -> bool:
        """Whether ``line`` shows it; TimeoutError when a pattern takes longer than
        ``timeout`` seconds."""
        if self.pattern is not None:
            return self.pattern.search(line, timeout=timeout) is not None
        return self.text in line


def parse_expectation(text: str) -> Expectation:
    """``TEXT`` or ``/REGEX/``; raises ValueError with a one-line reason."""
    text = text.strip()
    if not text:
        raise ValueError("!expect needs the text to wait for: !expect TEXT or !expect /REGEX/")
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        import regex  # only scripts with a pattern pay for the import

        try:
            return Expectation(text, regex.compile(text[1:-1], regex.VERSION0))
        except regex.error as exc:
            raise ValueError(f"!expect: not a regular expression: {exc}") from None
    return Expectation(text)


MAX_WAIT = 24 * 3600.0
"""The longest ``!wait``: a day; anything longer is a typing mistake."""


def parse_seconds(text: str) -> float:
    """A number of seconds from 0 to a day; raises ValueError with a one-line reason."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"!wait needs a number of seconds, not {text.strip()!r}") from None
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"!wait needs a number of seconds from 0 up, not {text.strip()}")
    if seconds > MAX_WAIT:
        raise ValueError(f"!wait takes at most {MAX_WAIT:g} seconds (a day), not {text.strip()}")
    return seconds


class ExpectWindow:
    """Lines printed since the last expectation was met, safe across threads."""

    def __init__(self, size: int = WINDOW_LINES) -> None:
        self._lines: deque[ScriptLineOut] = deque(maxlen=size)
        self._added = 0
        """Lines added ever: the first in the window is number ``_added - len(_lines)``."""
        self._changed = threading.Condition()
        self._waiting = False
        """Whether a waiter is to be woken for each new line."""

    def add(self, *lines: ScriptLineOut) -> None:
        with self._changed:
            self._lines.extend(lines)
            self._added += len(lines)
            if self._waiting:
                self._changed.notify_all()

    def wake(self) -> None:
        """Wake a waiter to look again (the connection ended, the script failed)."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, expectation: Expectation, timeout: float,
                 give_up: threading.Event) -> str | None:
        """The first matching line (the window then starts after it), or None.

        None when ``timeout`` seconds pass or ``give_up`` is set first. Lines are
        searched outside the lock, each search bounded by the time left, so the
        reader thread never waits for a pattern and the deadline always holds.
        """
        deadline = time.monotonic() + timeout
        checked = 0  # lines looked at, counted as _added counts them
        while True:
            with self._changed:
                self._waiting = True
                first = self._added - len(self._lines)
                start = max(checked, first)
                batch = [self._lines[number - first] for number in range(start, self._added)]
                checked = self._added
            for number, fragments in enumerate(batch, start):
                line = plain_text(fragments)
                try:
                    met = expectation.matches(line, max(deadline - time.monotonic(), 0.001))
                except TimeoutError:
                    return self._stop_waiting(None)
                if met:
                    with self._changed:
                        for _ in range(number + 1 - (self._added - len(self._lines))):
                            self._lines.popleft()
                    return self._stop_waiting(line)
            with self._changed:
                left = deadline - time.monotonic()
                if left <= 0 or give_up.is_set():
                    self._waiting = False
                    return None
                if self._added == checked:
                    self._changed.wait(left)

    def _stop_waiting(self, line: str | None) -> str | None:
        with self._changed:
            self._waiting = False
        return line

    def last(self, count: int) -> list[str]:
        with self._changed:
            return [plain_text(line) for line in list(self._lines)[-count:]]
