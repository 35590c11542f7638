"""A script run's stdout and stderr: one writer, one lock, and manners on failure.

The reader thread and the script's thread both write here, so no line is torn.
When stdout fails, the run ends as a Unix filter's does: quietly with the
status of SIGPIPE when the reader went away (``chatsh ... | head -1``), with one
line and status 1 on any other error (``> /dev/full``).
"""

from __future__ import annotations

import errno
import operator
import os
import threading
from collections.abc import Callable, Sequence

from ..texts import RawLine, ScriptLineOut

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO

EXIT_SIGPIPE = 128 + 13


_text = operator.itemgetter(1)
"""The text of a ``(style, text)`` fragment."""
HOLD = 64 * 1024
"""Characters of chat text held to go out in one write (at the end of a read)."""


class ScriptOutput:
    def __init__(self, out: TextIO, err: TextIO, on_failure: Callable[[], None]) -> None:
        self.out = out
        self.err = err
        self.failure: OSError | None = None
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._held: list[str] = []
        self._held_size = 0

    def lines(self, lines: Sequence[ScriptLineOut]) -> None:
        """Chat lines for stdout: held and joined when short; a long one (a body may be
        megabytes) written piece by piece, never copied whole; a :class:`RawLine`'s
        bytes written as they are."""
        short: list[str] = []
        with self._lock:
            for line in lines:
                if isinstance(line, RawLine):
                    self._hold_lines(short)
                    if self._write_held():
                        self._write_raw(line)
                elif len(line) == 1:
                    short.append(line[0][1])
                elif sum(map(len, map(_text, line))) < HOLD:
                    short.append("".join(map(_text, line)))
                else:
                    self._hold_lines(short)
                    if self._write_held():
                        self._write([*map(_text, line), "\n"])
            self._hold_lines(short)

    def _hold_lines(self, texts: list[str]) -> None:
        """Hold short lines, joined (the list is emptied)."""
        if texts:
            texts.append("")
            joined = "\n".join(texts)
            texts.clear()
            self._hold(joined, len(joined))

    def _write_raw(self, line: RawLine) -> None:
        """The head as text, then the body's bytes straight to the binary stdout."""
        buffer: BinaryIO | None = getattr(self.out, "buffer", None)
        if buffer is None:  # a text-only stream (a test's): the body decoded after all
            self._write([line.text(), "\n"])
            return
        try:
            self.out.write(line.head)
            self.out.flush()
            buffer.write(line.body)
            buffer.write(b"\n")
        except OSError as exc:
            self._failed(exc)

    def text(self, text: str) -> None:
        """Text for stdout as it is."""
        with self._lock:
            self._hold(text, len(text))

    def write_held(self) -> None:
        """Write what is held now."""
        if not self._held:  # read without the lock: a line held meanwhile waits for flush
            return
        with self._lock:
            self._write_held()

    def flush(self) -> None:
        with self._lock:
            if self._write_held() and self.failure is None:
                try:
                    self.out.flush()
                except OSError as exc:
                    self._failed(exc)

    def _hold(self, text: str, size: int) -> None:
        self._held.append(text)
        self._held_size += size
        if self._held_size >= HOLD:
            self._write_held()

    def _write_held(self) -> bool:
        """Write the held text (under the lock); False once stdout has failed."""
        held, self._held, self._held_size = self._held, [], 0
        return self._write(["".join(held)] if held else [])

    def _write(self, pieces: list[str]) -> bool:
        if self.failure is not None:
            return False
        try:
            for piece in pieces:
                self.out.write(piece)
        except OSError as exc:
            self._failed(exc)
        return self.failure is None

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
