"""``--log FILE``: a plain transcript of the shell, for reading later or grepping.

Every line the screen shows and every line typed, each with the date and time,
as UTF-8 text without escape codes: every line is escaped as on the screen, what
the user typed or pasted as well as what came from the network. The file is
created readable by its owner only (0600) and appended to; one that others could
read or write is made 0600, and one line says so. A file that cannot be written,
or is no regular file (a FIFO would hold the shell until someone reads it), says so
in one line and the shell goes on without it; so does one that fails later (a full
disk), once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from ..private import open_private
from ..sanitize import sanitize
from ..texts import Fragments, plain

STAMP = "%Y-%m-%d %H:%M:%S"


class Transcript:
    def __init__(self, path: str, warn: Callable[[str], None]) -> None:
        self._warn = warn
        self._lock = threading.Lock()
        self._fd: int | None = None
        try:
            self._fd = _opened(path, warn)
        except OSError as exc:
            warn(f"cannot write the log {sanitize(path)}: {exc.strerror or exc}; "
                 f"going on without it")

    def shown(self, lines: Sequence[Fragments]) -> None:
        """Lines the screen showed."""
        self.write([plain(line) for line in lines])

    def write(self, texts: Sequence[str]) -> None:
        """Lines escaped as on the screen, stamped with the time now."""
        if self._fd is None or not texts:
            return
        stamp = time.strftime(STAMP)
        data = "".join(f"{stamp} {sanitize(text)}\n" for text in texts).encode(
            "utf-8", "replace")
        with self._lock:
            try:
                view = memoryview(data)
                while view and self._fd is not None:
                    view = view[os.write(self._fd, view):]
            except OSError as exc:
                self._stop(f"cannot write the log any more: {exc.strerror or exc}")

    def _stop(self, why: str) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._warn(why)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _opened(path: str, warn: Callable[[str], None]) -> int:
    """The descriptor of the log, to append to, private to its owner."""
    fd, widened = open_private(path, os.O_WRONLY | os.O_APPEND)
    if widened is not None:
        warn(f"others could read the log {sanitize(path)} (mode {widened:04o}): it is 0600 now")
    return fd
