"""Make text from the network safe to show on a terminal or write to a log.

Every string that arrives from the network goes through :func:`escape_segments`
(or :func:`sanitize`) before display. C0 and C1 control characters, DEL and the
bidirectional-override controls become visible escapes such as ``^[``,
``<9b>`` or ``<U+202E>``; tabs are expanded; line and paragraph separators
become spaces. Everything else, emoji sequences and combining marks included,
passes unchanged.
"""

from __future__ import annotations

import re
import unicodedata

_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = f"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}\u2028\u2029]"
"""What must not reach a terminal as it is; compiled by ``re`` at its first use (0.6 ms
that most runs never need)."""
TAB_WIDTH = 8
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zs", "Zl", "Zp"})
"""Unicode categories no name may use: controls, format characters (zero-width
spaces, joiners, bidi controls, BOM), private use, surrogates, unassigned code
points and every kind of space or separator."""


def visible_escape(char: str) -> str:
    """The visible stand-in for a character: ``^X`` below 0x20, ``^?`` for DEL,
    ``<xx>`` up to 0x9F, ``<U+XXXX>`` above."""
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    if code <= 0x9F:
        return f"<{code:02x}>"
    return f"<U+{code:04X}>"


def escape_segments(text: str) -> list[tuple[bool, str]]:
    """Split ``text`` into ``(is_escape, piece)`` pairs that are safe to print.

    Pieces flagged True are visible escapes, for a front end to draw in their
    own style (reverse video in the terminal).
    """
    if text.isprintable():  # the common case, and a fast C loop over large bodies
        return [(False, text)] if text else []
    if "\t" in text:
        text = text.expandtabs(TAB_WIDTH)
    if re.search(_UNSAFE, text) is None:
        return [(False, text)]
    segments: list[tuple[bool, str]] = []
    start = 0
    for match in re.finditer(_UNSAFE, text):
        char = match.group()
        if match.start() > start:
            segments.append((False, text[start:match.start()]))
        if char in ("\u2028", "\u2029"):
            segments.append((False, " "))
        else:
            segments.append((True, visible_escape(char)))
        start = match.end()
    if start < len(text):
        segments.append((False, text[start:]))
    return segments


def escape_name_segments(name: str) -> list[tuple[bool, str]]:
    """:func:`escape_segments` for a user name: invisible characters escaped too.

    A message body keeps its zero-width joiners (emoji need them); a name
    shows every character of :data:`INVISIBLE_CATEGORIES` as ``<U+XXXX>``, so
    ``echo<U+200B>bot`` cannot pass for ``echobot``.
    """
    if name.isascii():  # the common case: every invisible ASCII character is a control
        return escape_segments(name)
    segments: list[tuple[bool, str]] = []
    for is_escape, piece in escape_segments(name):
        if is_escape:
            segments.append((is_escape, piece))
            continue
        start = 0
        for index, char in enumerate(piece):
            if unicodedata.category(char) in INVISIBLE_CATEGORIES and char != " ":
                if index > start:
                    segments.append((False, piece[start:index]))
                segments.append((True, visible_escape(char)))
                start = index + 1
        if start < len(piece):
            segments.append((False, piece[start:]))
    return segments


def sanitize(text: str) -> str:
    """Plain-text form of :func:`escape_segments`, for logs and pipes."""
    if text.isprintable():
        return text
    return "".join(piece for _, piece in escape_segments(text))


def whole_characters(text: str) -> str:
    """``text`` with each lone surrogate, which no encoder takes, as U+FFFD: a terminal
    not set to UTF-8 (or binary pasted) types bytes that are not UTF-8, and they reach
    a typed line as surrogates (the lines of ``-c`` get the same)."""
    return text if text.isprintable() else re.sub("[\ud800-\udfff]", "\ufffd", text)


QUOTED = 60
"""Characters of typed text that a reply quotes back."""


def quoted(text: str) -> str:
    """Typed text as a reply quotes it back: escaped, and cut short when long."""
    return sanitize(text if len(text) <= QUOTED else text[:QUOTED] + "...")
