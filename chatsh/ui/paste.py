"""Bracketed paste in time linear in its size, long pastes kept out of the line, and
escape sequences nobody knows dropped rather than typed.

prompt_toolkit's parser appends each chunk of a paste to one string and searches
the whole of it for the end mark after every chunk, so a paste of n bytes costs
O(n²): 10 s for 2 MiB. Here the chunks are kept in a list and the end mark is
looked for only in what is new (and the few bytes before it).

Drawing a line of megabytes at every key is slow too, so a long paste shows in
the input line as a short marker, ``[paste #1: 4194304 characters]``, which the text
replaces when the line is entered. A line the history keeps keeps its markers'
texts, so that Up brings the marker back and Enter sends the text again.
"""

from __future__ import annotations

import re

from prompt_toolkit.input import Input
from prompt_toolkit.input.ansi_escape_sequences import ANSI_SEQUENCES
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyPress
from prompt_toolkit.keys import Keys

START_MARK, END_MARK = "\x1b[200~", "\x1b[201~"
CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
CPR_RESPONSE = re.compile(r"\x1b\[\d+;\d+R")
"""The terminal's answer to where the cursor is: prompt_toolkit asks, to know the
height it may draw in (the bottom toolbar needs it)."""
"""A whole control sequence, as a terminal sends one for a key."""
INLINE_LIMIT = 16 * 1024
"""Characters of a paste shown in the input line as they are; longer ones get a marker."""


MARKER = re.compile(r"\[paste #\d+: \d+ characters(?:, \d+ lines)?\]")
"""What a marker looks like (one not held is text the user typed, sent as it is)."""


class Pastes:
    """Long pastes behind their markers: held until their line is entered, or for as
    long as the shell runs when the history keeps the line."""

    def __init__(self) -> None:
        self._held: dict[str, str] = {}
        self._kept: dict[str, str] = {}
        self._count = 0

    def marker(self, text: str) -> str:
        """What the input line shows for ``text``: the text itself when short."""
        if len(text) <= INLINE_LIMIT:
            return text
        self._count += 1
        lines = text.count("\n") + (not text.endswith("\n"))  # a last newline ends a line
        marker = f"[paste #{self._count}: {len(text)} characters" + (
            f", {lines} lines]" if lines > 1 else "]")
        self._held[marker] = text
        return marker

    def recalled(self, text: str) -> str:
        """What the input line shows for a line of the history: a long one's marker,
        after its ``@name`` if it starts with one, is kept, as is :meth:`keep`'s."""
        head, space, rest = text.partition(" ")
        if head.startswith("@") and space and "\n" not in head:
            shown = head + space + self.marker(rest)
        else:
            shown = self.marker(text)
        self._kept.update(self._held)
        self._held.clear()
        return shown

    def text_of(self, line: str) -> str:
        """``line`` with each marker replaced by its paste (in one pass: a paste holding
        a marker's text stays as it is)."""
        if "[paste #" not in line:
            return line
        return MARKER.sub(lambda found: self._held.get(found[0])
                          or self._kept.get(found[0], found[0]), line)

    def keep(self, line: str) -> None:
        """The markers of ``line`` (the history keeps it) stay meaningful from now on."""
        for found in MARKER.finditer(line):
            if found[0] in self._held:
                self._kept[found[0]] = self._held[found[0]]

    def expand(self, line: str) -> str:
        """The entered ``line`` with each marker replaced by its paste; the pastes of
        this line are held no more, unless kept."""
        text = self.text_of(line)
        self._held.clear()
        return text


class LinearPasteParser(Vt100Parser):
    """A :class:`Vt100Parser` whose bracketed paste is linear."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._chunks: list[str] = []
        self._tail = ""

    def feed(self, data: str) -> None:
        if not self._in_bracketed_paste:
            if "\x1b[" in data:  # a key prompt_toolkit does not know would be typed as text
                keys, start, pasted = data.partition(START_MARK)
                data = CSI.sub(_known_only, keys) + start + pasted  # a paste stays as it is
            super().feed(data)  # calls this feed again when a paste starts
            return
        window = self._tail + data
        found = window.find(END_MARK)
        if found < 0:
            self._chunks.append(data)
            self._tail = window[-(len(END_MARK) - 1):]
            return
        self._chunks.append(data)
        content = "".join(self._chunks)
        end = len(content) - len(window) + found
        self._chunks, self._tail = [], ""
        self._in_bracketed_paste = False
        self.feed_key_callback(KeyPress(Keys.BracketedPaste, content[:end]))
        self.feed(content[end + len(END_MARK):])


def _known_only(sequence: re.Match[str]) -> str:
    """A control sequence as it is when it names a key (or answers a cursor position
    request), else nothing."""
    text = sequence.group()
    return text if text in ANSI_SEQUENCES or CPR_RESPONSE.fullmatch(text) else ""


def with_linear_paste(terminal_input: Input) -> Input:
    """``terminal_input`` with its VT100 parser replaced (other inputs are left alone)."""
    parser = getattr(terminal_input, "vt100_parser", None)
    if isinstance(parser, Vt100Parser):
        terminal_input.vt100_parser = LinearPasteParser(  # type: ignore[attr-defined]
            parser.feed_key_callback)
    return terminal_input
