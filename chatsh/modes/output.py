"""A script run's stdout and stderr: one writer, one lock, and manners on failure.

The reader thread and the script's thread both write here, so no line is torn.
When stdout fails, the run ends as a Unix filter's does: quietly with the
status of SIGPIPE when the reader went away (``chatsh ... | head -1``), with one
line and status 1 on any other error (``> /dev/full``).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Sequence
from typing import TextIO

from ..texts import Fragments

EXIT_SIGPIPE = 128 + 13


class ScriptOutput:
    def __init__(self, out: TextIO, err: TextIO, on_failure: Callable[[], None]) -> None:
        self.out = out
        self.err = err
        self.failure: OSError | None = None
        self._on_failure = on_failure
        self._lock = threading.Lock()

    def lines(self, lines: Sequence[Fragments]) -> None:
        """Chat lines on stdout, piece by piece (a body may be megabytes)."""
        with self._lock:
            if self.failure is None:
                try:
                    write = self.out.write
                    for line in lines:
                        for _, text in line:
                            write(text)
                        write("\n")
                except OSError as exc:
                    self._failed(exc)

    def text(self, text: str) -> None:
        """Text on stdout as it is."""
        with self._lock:
            if self.failure is None:
                try:
                    self.out.write(text)
                except OSError as exc:
                    self._failed(exc)

    def flush(self) -> None:
        with self._lock:
            if self.failure is None:
                try:
                    self.out.flush()
                except OSError as exc:
                    self._failed(exc)

    def diagnostic(self, text: str) -> None:
        """A line (or lines) on stderr, at once; stderr's own errors are ignored."""
        with self._lock:
            try:
                self.err.write(text)
                self.err.flush()
            except OSError:
                pass

    def _failed(self, exc: OSError) -> None:
        self.failure = exc
        self._on_failure()

    def exit_status(self) -> int | None:
        """The status a failed stdout ends the run with, or None if it never failed."""
        if self.failure is None:
            return None
        try:  # nothing more may reach the dead stdout, not even at interpreter exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.out.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        if isinstance(self.failure, BrokenPipeError) or self.failure.errno == errno.EPIPE:
            return EXIT_SIGPIPE
        reason = self.failure.strerror or str(self.failure)
        self.diagnostic(f"chatsh: cannot write the output: {reason}\n")
        return 1
