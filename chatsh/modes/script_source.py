"""A script's lines as they are read: numbered, blank lines and ``#`` comments left
out, UTF-8 decoded, a long message line kept as the bytes read and one past the cap
not kept at all; and a line as a report quotes it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from io import BufferedIOBase

from ..defaults import CLIENT_MAX_LINE
from ..framing import LineFramer, OversizedLine

PREVIEW = 200
"""Characters of a script line a report quotes."""


def preview(text: str | bytearray, limit: int = PREVIEW) -> str:
    """A script line as named in a report: long ones cut short (a ``bytearray`` is
    ASCII)."""
    if len(text) <= limit:
        return text if isinstance(text, str) else text.decode("ascii")
    start = text[:limit] if isinstance(text, str) else text[:limit].decode("ascii")
    return f"{start}... ({len(text)} characters)"


_SKIPPED = re.compile(r"\s*(?:#|$)")
"""A blank line or a ``#`` comment (of a line without its line end)."""
_SKIPPED_BYTES = _SKIPPED.pattern.encode()
"""The same, for a long line's bytes (compiled at its first use: few runs need it)."""


def script_lines(lines: Iterable[str], login: bool = False) -> Iterator[tuple[int, str]]:
    """Numbered lines that are not blank and not ``#`` comments; with ``login``, the
    first line whatever it is (the lines of ``-c`` are typed: the first one answers the
    login prompt as given, where ``#x y`` was skipped and the next line was the name)."""
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if (login and number == 1) or not _SKIPPED.match(text):
            yield number, text


LONG_LINE = 1024 * 1024
"""A script line of ASCII longer than this is kept as the bytes read (see
:func:`read_lines`)."""
READ_SIZE = 256 * 1024
_BOM = b"\xef\xbb\xbf"


def read_lines(source: BufferedIOBase, max_line: int = CLIENT_MAX_LINE
               ) -> Iterator[tuple[int, str | bytearray | OversizedLine]]:
    """The numbered lines of a script file or pipe, as they arrive, without blanks and
    ``#`` comments: UTF-8 (a bad byte becomes U+FFFD, a byte-order mark is dropped).

    A line of ASCII past :data:`LONG_LINE` bytes comes as the ``bytearray`` it was read
    into, so a message of many megabytes is held once, never decoded nor copied. A line
    past ``max_line`` bytes is not held at all: an :class:`OversizedLine` stands for it.
    """
    framer = LineFramer(max_line, hand_over=LONG_LINE)
    number = 0
    while True:
        chunk = source.read1(READ_SIZE)
        lines = framer.feed(chunk) if chunk else [line for line in [framer.rest()] if line]
        lines.reverse()
        while lines:  # popped, so no list keeps a long line once it is passed on
            line = lines.pop()
            number += 1
            if isinstance(line, OversizedLine):
                yield number, line
                continue
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM):]
            if isinstance(line, bytearray) and line.isascii():
                while line.endswith((b"\r", b"\n")):
                    del line[-1:]
                if not re.match(_SKIPPED_BYTES, line):
                    yield number, line
            else:
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                if text.startswith("@") or not _SKIPPED.match(text):
                    yield number, text
        if not chunk:
            return
