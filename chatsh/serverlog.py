"""What the server writes into its log: lines with a prefix on stderr, names cut and
escaped, and a bounded number of lines about any one address, so that no client decides
what the log holds or how much of it there is."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from . import protocol as p
from .sanitize import sanitize

Log = Callable[[str], None]
"""Writes a line of the log: a plain ``str``, or a :class:`LogLine` that also says what
happened and to whom (which ``--log-format json`` writes as fields)."""


class LogLine(str):
    """A line of the log with what a machine reads from it besides its text: the event,
    the peer's address and port, the user's name (cut and escaped here), and a level."""

    event: str
    peer: str
    user: str
    level: str

    def __new__(cls, text: str, event: str, peer: str = "", user: str | bytes = "",
                level: str = "info") -> LogLine:
        line = super().__new__(cls, text)
        line.event, line.peer, line.level = event, peer, level
        line.user = logged_name(user) if user else ""
        return line


def log_to_stderr(message: str) -> None:
    print(f"chatsh serve: {message}", file=sys.stderr, flush=True)


LOGGED_NAME_LENGTH = 64


def logged_name(name: str | bytes) -> str:
    """A name as a log shows it: cut to a bounded length before anything else, escaped."""
    limit = LOGGED_NAME_LENGTH
    text = name[:4 * limit].decode(p.ENCODING, "replace") if isinstance(
        name, bytes) else name[:4 * limit]
    if len(text) > limit or len(name) > 4 * limit:
        return f"{sanitize(text[:limit])}... ({len(name)} long)"
    return sanitize(text)


def no_log(message: str) -> None:
    """Discard log lines (the embedded server keeps the terminal clean)."""


LOG_BURST = 32
"""Lines about one address that a log window writes; the rest are counted."""
LOGIN_BURST = 120
"""Logins from one address that a log window writes, each with its logout: a crowd
behind one address logs in far fewer a minute; a client that logs in and out in a loop
wrote two lines a try, 4,000 a second."""
LOG_WINDOW = 60.0
"""Seconds of a log window: its count of lines not written is one line at its end."""
LOG_ADDRESSES = 4096
"""Addresses with a window of their own at once; lines about any further address share
one window, so that a flood from many addresses (an IPv6 block) takes bounded memory."""
OTHER_ADDRESSES = "other addresses"


class Timer(Protocol):
    def cancel(self) -> None: ...


Schedule = Callable[[float, Callable[[], None]], Timer]
"""Call a function after a delay in seconds (``loop.call_later``)."""


@dataclass
class _Window:
    timer: Timer
    written: int = 0
    held: int = 0


class PeerLog:
    """Lines about peers, a bounded number per address: in each window from the first
    line about an address, ``burst`` lines are written and the rest counted, and the
    count is one line when the window ends. One address's flood never holds back lines
    about another, unless ``max_addresses`` others have windows open already."""

    def __init__(self, write: Log, schedule: Schedule, burst: int = LOG_BURST,
                 window: float = LOG_WINDOW, max_addresses: int = LOG_ADDRESSES,
                 kind: str = "line") -> None:
        """``kind`` is what the count line calls what it counts (a line, a login)."""
        self._write = write
        self.kind = kind
        self._schedule = schedule
        self.burst = burst
        self.window = window
        self.max_addresses = max_addresses
        self._windows: dict[str, _Window] = {}

    def about(self, address: str, message: str) -> bool:
        """Write ``message``, a line about ``address``, unless its window's are spent;
        whether it was written."""
        if address not in self._windows and len(self._windows) >= self.max_addresses:
            address = OTHER_ADDRESSES
        window = self._windows.get(address)
        if window is None:
            window = self._windows[address] = _Window(
                self._schedule(self.window, lambda: self._end(address)))
        if window.written < self.burst:
            window.written += 1
            self._write(message)
            return True
        window.held += 1
        return False

    def _end(self, address: str) -> None:
        window = self._windows.pop(address)
        if window.held:
            lines = self.kind if window.held == 1 else f"{self.kind}s"
            which = "them" if address == OTHER_ADDRESSES else "this address"
            self._write(LogLine(f"{address}: {window.held} more {lines} about {which} left "
                                f"out (over {self.burst} in {self.window:g} s)",
                                "lines_left_out", "" if address == OTHER_ADDRESSES else address,
                                level="warning"))

    def flush(self) -> None:
        """End every window now (the server stops): each count of held lines is written."""
        for address, window in list(self._windows.items()):
            window.timer.cancel()
            self._end(address)
