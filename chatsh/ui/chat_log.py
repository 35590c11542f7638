"""``--log FILE``: a chat log as irssi writes one, for reading later or grepping.

The messages and nothing else: a line for each received (``<bob> see you``) and each
sent (``<alice> @bob on my way``, with whom it went to: one log holds every
conversation), each with one time stamp, between ``--- Log opened`` and ``--- Log
closed`` lines; no replies, lists, errors or prompts. Every name and body is escaped
as on the screen (what the network sent and what the user typed or pasted alike), so
``cat`` of the log replays nothing. The file is created readable by its owner only
(0600) and appended to; one that others could read or write is made 0600, and one line
says so. A file that cannot be written, or is no regular file (a FIFO would hold the
shell until someone reads it), says so in one line and the shell goes on without it;
so does one that fails later (a full disk), once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from ..private import open_private
from ..sanitize import escape_name_segments, sanitize

STAMP = "%Y-%m-%d %H:%M:%S"
MARKER_TIME = "%a %b %d %H:%M:%S %Y"
"""The time of the opened and closed lines, as irssi writes it."""


class ChatLog:
    """The log at ``path``; ``me`` gives the login name, ``warn`` says a problem."""

    def __init__(self, path: str, me: Callable[[], str], warn: Callable[[str], None]) -> None:
        self._me = me
        self._warn = warn
        self._lock = threading.Lock()
        self._fd: int | None = None
        try:
            self._fd = _opened(path, warn)
        except OSError as exc:
            warn(f"cannot write the log {sanitize(path)}: {exc.strerror or exc}; "
                 f"going on without it")
        self._write(f"--- Log opened {time.strftime(MARKER_TIME)}\n")

    def received(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Messages that came (from any thread)."""
        if self._fd is None:
            return
        stamp = time.strftime(STAMP)
        self._write("".join(f"{stamp} <{_name(sender)}> {sanitize(body)}\n"
                            for sender, body in pairs))

    def sent(self, peer: str, body: str) -> None:
        """A message the user sent to ``peer``."""
        if self._fd is not None:
            self._write(f"{time.strftime(STAMP)} <{_name(self._me())}> @{_name(peer)} "
                        f"{sanitize(body)}\n")

    def close(self) -> None:
        self._write(f"--- Log closed {time.strftime(MARKER_TIME)}\n")
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8", "replace"))
        with self._lock:
            try:
                while data and self._fd is not None:
                    data = data[os.write(self._fd, data):]
            except OSError as exc:
                self._stop(f"cannot write the log any more: {exc.strerror or exc}")

    def _stop(self, why: str) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._warn(why)


def _name(name: str) -> str:
    """A name as the screen shows it: invisible characters made visible too."""
    return "".join(piece for _, piece in escape_name_segments(name))


def _opened(path: str, warn: Callable[[str], None]) -> int:
    """The descriptor of the log, to append to, private to its owner."""
    fd, widened = open_private(path, os.O_WRONLY | os.O_APPEND)
    if widened is not None:
        warn(f"others could read the log {sanitize(path)} (mode {widened:04o}): it is 0600 now")
    return fd
