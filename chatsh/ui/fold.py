"""A message's line folded to the terminal's width, its rows hung under the message.

A line with a head (``From bob: ``, a stored message's ``2026-12-07 14:03 <bob> ``, a
time stamp before either, the command's column of a ``!help`` row) that is wider than
the terminal breaks between words, and each row after the first starts where the
message started, as WeeChat shows it; the terminal would break it anywhere and go on
at column 0, where a row looks like a line of its own. Widths are counted in the
terminal's cells: a wide character takes two, a combining accent none and stays with
its letter. A line that is not all ASCII leaves the last column free: terminals differ
on an accent or a wide character that meets the right margin (pyte, for one, moves the
accent to a row of its own).
"""

from __future__ import annotations

from prompt_toolkit.utils import get_cwidth

from ..texts import HEAD, Fragments, width

HEAD_STYLE = "class:from"
"""The style that ends a message's head (``From ``, ``: ``, ``<``, ``> ``); a fragment
of the style class :data:`texts.HEAD` ends the head of any other line."""
MAX_FOLDED = 65_536
"""Characters of a line past which the terminal is left to wrap it (a megabyte message
is not read row by row, and folding it would cost more than drawing it)."""
NARROWEST = 10
"""Columns the text must keep beside the head for the rows to hang under it; with
fewer they hang :data:`SHORT_HANG` columns in."""
SHORT_HANG = 2
"""Columns rows hang in under a head that leaves too little room beside it."""
ZERO_WIDTH_JOINER = "\u200d"


def cells(text: str) -> int:
    """The terminal cells ``text`` takes."""
    return len(text) if text.isascii() else get_cwidth(text)


def needs(line: Fragments) -> int:
    """The columns a line needs to be shown unfolded: its cells, one more when it is
    not all ASCII."""
    text = "".join([piece for _, piece in line])
    return len(text) if text.isascii() else get_cwidth(text) + 1


def head_length(line: Fragments) -> int:
    """The characters of the line's head, up to its last :data:`HEAD_STYLE` or
    :data:`texts.HEAD` fragment (0 for a line without one)."""
    offset = head = 0
    for style, text in line:
        offset += len(text)
        if style == HEAD_STYLE or HEAD in style.split():
            head = offset
    return head


def fold(line: Fragments, columns: int) -> list[Fragments]:
    """The rows of ``line`` on a terminal ``columns`` wide: itself alone when it fits,
    has no head or is very long."""
    size = width(line)
    if size * 2 < columns or size > MAX_FOLDED:  # no character takes more than 2 cells
        return [line]
    head = head_length(line)
    text = "".join([piece for _, piece in line])
    if not head or needs(line) <= columns:
        return [line]
    indent, spans = layout(text, head, columns)
    return _cut(line, spans, [("", " " * indent)] if indent > 0 else [])


def layout(text: str, head: int, columns: int) -> tuple[int, list[tuple[int, int]]]:
    """How a line's ``text`` whose head is ``head`` characters long folds: the columns
    its rows after the first are hung, and where each row starts and ends."""
    limit = columns if text.isascii() else max(columns - 1, 1)
    indent = cells(text[:head])
    if limit - indent < NARROWEST:
        indent = min(SHORT_HANG, limit - 1)
    return indent, _spans(text, head, limit, limit - indent)


def _spans(text: str, head: int, columns: int, room: int) -> list[tuple[int, int]]:
    """Where each row starts and ends in ``text``: the first row ``columns`` cells wide
    and broken after the head at the earliest (in it, if the head is wider), the others
    ``room`` wide. A row ends at
    a space (the spaces there are dropped) unless the word after it would not fit in
    a row of its own either: that word is cut where the row ends. No row ends in
    spaces."""
    spans: list[tuple[int, int]] = []
    size = len(text)
    ascii = text.isascii()
    start, limit, earliest = 0, columns, head - 1
    while True:
        end = start + max(limit, 1) if ascii else _fitting(text, start, limit)
        if end >= size:
            spans.append((start, size))
            return spans
        cut = end
        if text[end] != " ":  # a head wider than the row breaks between its own words
            space = text.rfind(" ", max(start + 1, earliest if earliest < end else 0), end)
            after = text.find(" ", end)
            word = text[space + 1:size if after < 0 else after]
            if space > start and (len(word) if ascii else cells(word)) <= room:
                cut = space
        last = cut
        while last > start + 1 and text[last - 1] == " ":
            last -= 1
        spans.append((start, last))
        start = cut
        while start < size and text[start] == " ":
            start += 1
        if start >= size:
            return spans
        limit, earliest = room, 0


def _fitting(text: str, start: int, limit: int) -> int:
    """The end of the longest piece of ``text`` (not all ASCII) from ``start`` that fits
    in ``limit`` cells, combining characters kept with their letter and characters
    joined by a zero width joiner (an emoji family) kept together; at least one
    character."""
    taken = 0
    end = start
    size = len(text)
    while end < size:
        taken += get_cwidth(text[end])
        if taken > limit and end > start:
            joined = _joined_from(text, start, end)
            return joined if joined > start else end
        end += 1
    return end


def _joined_from(text: str, start: int, end: int) -> int:
    """Where the characters joined to the one at ``end`` by zero width joiners begin
    (``end`` itself when none is), not before ``start``."""
    at = end
    while at > start and text[at - 1] == ZERO_WIDTH_JOINER:
        at -= 1
        while at > start and get_cwidth(text[at - 1]) == 0:  # a variation selector
            at -= 1
        at = max(at - 1, start)
    return at


def _cut(line: Fragments, spans: list[tuple[int, int]], indent: Fragments
         ) -> list[Fragments]:
    """The line's fragments cut at ``spans``, each row after the first after ``indent``."""
    pieces: list[tuple[int, str, str]] = []
    offset = 0
    for style, text in line:
        pieces.append((offset, style, text))
        offset += len(text)
    rows: list[Fragments] = []
    index = 0
    for start, end in spans:
        row: Fragments = list(indent) if rows else []
        while index < len(pieces) and pieces[index][0] + len(pieces[index][2]) <= start:
            index += 1
        at = index
        while at < len(pieces) and pieces[at][0] < end:
            begins, style, text = pieces[at]
            part = text[max(start - begins, 0):end - begins]
            if part:
                row.append((style, part))
            at += 1
        rows.append(row)
    return rows
