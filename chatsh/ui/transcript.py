"""``--log FILE``: a plain transcript of the shell, for reading later or grepping.

Every line the screen shows and every line typed, each with the date and time,
as UTF-8 text without escape codes; text from the network is escaped as on the
screen. The file is created readable by its owner only (0600) and appended to.
A file that cannot be written says so once and the shell goes on without it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from ..texts import Fragments, plain

STAMP = "%Y-%m-%d %H:%M:%S"


class Transcript:
    def __init__(self, path: str, warn: Callable[[str], None]) -> None:
        self._warn = warn
        self._lock = threading.Lock()
        self._fd: int | None = None
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            warn(f"cannot write the log {path}: {exc.strerror or exc}; going on without it")

    def shown(self, lines: Sequence[Fragments]) -> None:
        """Lines the screen showed."""
        self.write([plain(line) for line in lines])

    def write(self, texts: Sequence[str]) -> None:
        """Lines as they are (already escaped), stamped with the time now."""
        if self._fd is None or not texts:
            return
        stamp = time.strftime(STAMP)
        data = "".join(f"{stamp} {text}\n" for text in texts).encode("utf-8", "replace")
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
