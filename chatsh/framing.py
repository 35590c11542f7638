"""Split a byte stream into ``\\n``-terminated lines, whatever the chunking.

The framer searches for ``\\n`` only in newly fed bytes and keeps the pieces of
an unfinished line in a list, so a line of n bytes costs O(n) however it is
split. A line longer than ``max_line`` is not stored: the framer reports it once
as :class:`OversizedLine` and drops the bytes up to the next ``\\n``.
"""

from __future__ import annotations

from .defaults import DEFAULT_MAX_LINE
from .record import Record


class OversizedLine(Record):
    """A line that grew past the framer's cap; its bytes were discarded."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        self.limit = limit


class LineFramer:
    """Turn arbitrary chunks into complete lines (without the ``\\n``)."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._pieces: list[bytes] = []
        self._pending = 0
        self._discarding = False

    @property
    def pending(self) -> int:
        """Bytes held for a line whose ``\\n`` has not arrived yet."""
        return self._pending

    def feed(self, data: bytes) -> list[bytes | OversizedLine]:
        """Take the next chunk and return every line it completes, in order."""
        out: list[bytes | OversizedLine] = []
        start = 0
        end = len(data)
        while start < end:
            if not self._pieces and not self._discarding and end - start <= self.max_line:
                # no line left in the chunk can pass the cap: split it in one call
                lines = (data[start:] if start else data).split(b"\n")
                tail = lines.pop()
                out += lines
                if tail:
                    self._pieces.append(tail)
                    self._pending = len(tail)
                break
            newline = data.find(b"\n", start)
            if newline < 0:
                self._hold(data, start, end, out)
                break
            if self._discarding:
                self._discarding = False
            elif self._pending + newline - start > self.max_line:
                out.append(OversizedLine(self.max_line))
                self._pieces.clear()
                self._pending = 0
            elif self._pieces:
                self._pieces.append(data[start:newline])
                out.append(b"".join(self._pieces))
                self._pieces.clear()
                self._pending = 0
            else:
                out.append(data[start:newline])
            start = newline + 1
        return out

    def _hold(self, data: bytes, start: int, end: int,
              out: list[bytes | OversizedLine]) -> None:
        """Keep the tail of a chunk that ends mid-line, or drop it past the cap."""
        if self._discarding:
            return
        self._pending += end - start
        if self._pending > self.max_line:
            out.append(OversizedLine(self.max_line))
            self._pieces.clear()
            self._pending = 0
            self._discarding = True
            return
        self._pieces.append(data if start == 0 and end == len(data) else data[start:end])

    def rest(self) -> bytes | None:
        """At the end of the stream: the last line the close cut short of its ``\n``,
        if any (None also while discarding an over-long one)."""
        if self._discarding or not self._pieces:
            return None
        line = b"".join(self._pieces)
        self._pieces.clear()
        self._pending = 0
        return line
