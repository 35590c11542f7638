"""Split a byte stream into ``\\n``-terminated lines, whatever the chunking.

The framer searches for ``\\n`` only in newly fed bytes and grows an unfinished
line in one ``bytearray``, so a line of n bytes costs O(n) however it is split
and is held once. A line longer than ``max_line`` is not stored: the framer
reports it once as :class:`OversizedLine` and drops the bytes up to the next
``\\n``. With ``hand_over`` set, a line longer than that many bytes comes out as
the ``bytearray`` it grew in, not copied into ``bytes`` (a body may be megabytes).
"""

from __future__ import annotations

from .defaults import DEFAULT_MAX_LINE
from .record import Record


class OversizedLine(Record):
    """A line that grew past the framer's cap; its bytes were discarded."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        self.limit = limit


Line = bytes | bytearray
"""A complete line: ``bytes``, or the ``bytearray`` a long one grew in."""


class LineFramer:
    """Turn arbitrary chunks into complete lines (without the ``\\n``)."""

    __slots__ = ("max_line", "hand_over", "_held", "_discarding")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE, hand_over: int | None = None
                 ) -> None:
        self.max_line = max_line
        self.hand_over = max_line + 1 if hand_over is None else hand_over
        self._held = bytearray()
        self._discarding = False

    @property
    def pending(self) -> int:
        """Bytes held for a line whose ``\\n`` has not arrived yet."""
        return len(self._held)

    def feed(self, data: bytes) -> list[Line | OversizedLine]:
        """Take the next chunk and return every line it completes, in order."""
        if not self._held and not self._discarding and len(data) <= self.max_line:
            whole = data.split(b"\n")  # (the common chunk, of whole lines: one call)
            tail = whole.pop()
            if tail:
                self._held += tail
            return whole  # type: ignore[return-value]
        out: list[Line | OversizedLine] = []
        start = 0
        end = len(data)
        while start < end:
            if not self._held and not self._discarding and end - start <= self.max_line:
                # no line left in the chunk can pass the cap: split it in one call
                lines = (data[start:] if start else data).split(b"\n")
                tail = lines.pop()
                out += lines
                self._held += tail
                break
            newline = data.find(b"\n", start)
            if newline < 0:
                self._hold(memoryview(data)[start:end], out)
                break
            if self._discarding:
                self._discarding = False
            elif len(self._held) + newline - start > self.max_line:
                out.append(OversizedLine(self.max_line))
                self._held.clear()
            elif self._held:
                self._held += memoryview(data)[start:newline]
                out.append(self._take())
            else:
                out.append(data[start:newline])
            start = newline + 1
        return out

    def _hold(self, piece: memoryview, out: list[Line | OversizedLine]) -> None:
        """Keep the tail of a chunk that ends mid-line, or drop it past the cap."""
        if self._discarding:
            return
        if len(self._held) + len(piece) > self.max_line:
            out.append(OversizedLine(self.max_line))
            self._held.clear()
            self._discarding = True
            return
        self._held += piece

    def _take(self) -> Line:
        """The held line, now complete; the framer starts afresh."""
        if len(self._held) > self.hand_over:
            line, self._held = self._held, bytearray()
            return line
        line_bytes = bytes(self._held)
        self._held.clear()
        return line_bytes

    def rest(self) -> Line | None:
        """At the end of the stream: the last line the close cut short of its ``\n``,
        if any (None also while discarding an over-long one)."""
        if self._discarding or not self._held:
            return None
        return self._take()
