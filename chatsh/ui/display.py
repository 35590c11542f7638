"""Print lines above the prompt from any thread, batched per redraw.

The socket thread calls :meth:`Display.show`; the lines wait in a list and the
event loop prints everything that has gathered in one go, so a flood costs one
redraw per batch rather than one per message. When the terminal is slower than
the network, the backlog is bounded by the memory its lines take (each line's
objects counted, not only its characters): :meth:`Display.show` then holds the
socket thread, which stops reading, so the server's own backpressure takes over.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
from collections.abc import Callable, Sequence

from prompt_toolkit.application import Application, get_app_or_none
from prompt_toolkit.data_structures import Size
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.output import ColorDepth, Output
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.renderer import CPR_Support, print_formatted_text
from prompt_toolkit.styles import BaseStyle

from ..record import Record
from ..texts import Fragments, plain, width
from .fold import fold

_RESET = "\x1b[m"
"""Select graphic rendition 0: every attribute reset."""


class Rendered(Record):
    """Lines already made into a VT100 terminal's text (``text``: each line from reset
    attributes to reset attributes and ``\\r\\n``), as a flood of messages is; ``size``
    counts their characters without escape codes, ``count`` the lines, ``cost`` the bytes
    of memory they take (what ``lines`` keeps included), and ``lines()`` gives them as
    fragments, for any other output, a transcript or time stamps. The text is folded
    for a terminal ``columns`` wide (see fold.py); no line is wider than ``widest``."""

    __slots__ = ("text", "size", "count", "cost", "lines", "columns", "widest")

    def __init__(self, text: str, size: int, count: int, cost: int,
                 lines: Callable[[], list[Fragments]], columns: int = 0,
                 widest: int = 0) -> None:
        self.text = text
        self.size = size
        self.count = count
        self.cost = cost
        self.lines = lines
        self.columns = columns
        self.widest = widest

    def fits(self, columns: int) -> bool:
        """Whether the text is folded as a terminal ``columns`` wide needs it."""
        return columns == self.columns or self.widest <= min(columns, self.columns)


FRAGMENT_COST = 64
"""Bytes of a fragment besides its strings: its tuple and its place in the line's list."""
LINE_COST = 72
"""Bytes of a line's list, besides its fragments."""


def memory(line: Fragments) -> int:
    """About the bytes of memory a line of fragments takes (shared strings counted as
    if they were not: a bound, not a measure)."""
    return LINE_COST + sum([FRAGMENT_COST + sys.getsizeof(style) + sys.getsizeof(text)
                            for style, text in line])


def measure(lines: Sequence[Shown]) -> tuple[int, int]:
    """The characters of ``lines`` (without escape codes) and the bytes they take."""
    size = cost = 0
    for line in lines:
        if isinstance(line, Rendered):
            size += line.size
            cost += line.cost
        else:
            size += width(line)
            cost += memory(line)
    return size, cost


Shown = Fragments | Rendered
"""A line to show, or lines made into text already."""


def as_fragments(lines: Sequence[Shown]) -> list[Fragments]:
    """The lines as fragments, whatever form they came in."""
    out: list[Fragments] = []
    for line in lines:
        if isinstance(line, Rendered):
            out += line.lines()
        else:
            out.append(line)
    return out


class DumbOutput(Vt100_Output):
    """Output for a dumb terminal: the cursor is never shown or hidden by escape codes."""

    def show_cursor(self) -> None:
        pass

    def hide_cursor(self) -> None:
        pass


MAX_BACKLOG = 16 * 1024 * 1024
"""Bytes of memory the lines waiting to be printed may take before the socket thread is
held (until half of it is printed)."""
DRAIN_STEP = 64 * 1024
"""Characters printed in one turn of the event loop; the keys typed meanwhile are
handled before the next turn, so Ctrl-D or a typed line never waits for a backlog."""


class Display:
    """Lines above the prompt; ``plain_prompt``, for a dumb terminal, gives the
    prompt line being typed (empty when none): lines are then written as bare
    text on lines of their own, and that prompt line written again after them."""

    def __init__(self, output: Output, style: BaseStyle, color_depth: ColorDepth | None,
                 max_backlog: int = MAX_BACKLOG,
                 plain_prompt: Callable[[], str] | None = None) -> None:
        self._plain_prompt = plain_prompt
        self._output = output
        self._style = style
        self._color_depth = color_depth
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sequences: dict[str, tuple[str, str]] = {}
        self._pending: list[tuple[tuple[Shown, ...], int, int]] = []
        """Batches of lines waiting to be printed, each with its size in characters and
        the bytes it takes."""
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._backlog = 0
        """Bytes the lines waiting to be printed take."""
        self._written_at = 0.0
        """When the last lines were written (the monotonic clock)."""
        self._max_backlog = max_backlog
        self._loop_thread: int | None = None
        self._closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Print on ``loop`` from now on (the loop the prompt runs in, this thread's)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def show(self, *lines: Shown) -> None:
        """Queue lines for printing; safe from any thread.

        Off the event loop, waits while more than the bound is waiting to be printed.
        """
        size, cost = measure(lines)
        with self._lock:
            if self._closed:
                return
            first = not self._pending
            self._pending.append((lines, size, cost))
            self._backlog += cost
        if first:
            self.call_soon(self._flush)
        if self._backlog > self._max_backlog and not self.on_loop_thread():
            with self._drained:
                while self._backlog > self._max_backlog // 2 and not self._closed:
                    self._drained.wait(0.5)

    @property
    def drawn(self) -> bool:
        """Whether every line shown so far is on the screen: none waits to be drawn, nor
        is being written (the backlog counts those until their write has returned)."""
        return self._backlog == 0

    def drawn_for(self) -> float:
        """Seconds since the last line was written, with none waiting since (0 while
        lines wait or are being written)."""
        return time.monotonic() - self._written_at if self._backlog == 0 else 0.0

    def on_loop_thread(self) -> bool:
        """Whether the caller runs on the thread of the loop this display prints on."""
        return threading.get_ident() == self._loop_thread

    def close(self) -> int:
        """Stop: drop what is still queued, so that leaving never waits for a
        backlog; later lines are dropped too, and a thread held by :meth:`show` goes
        on. Returns how many lines were dropped."""
        with self._drained:
            dropped = sum(line.count if isinstance(line, Rendered) else 1
                          for batch, _, _ in self._pending for line in batch)
            self._pending.clear()
            self._backlog = 0
            self._closed = True
            self._drained.notify_all()
        return dropped

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the event loop after the lines queued so far."""
        assert self._loop is not None, "bind() the display to a loop first"
        self._loop.call_soon_threadsafe(callback)

    def _flush(self) -> None:
        """Print above the prompt: erase it, write, draw it again.

        Not with ``run_in_terminal``, which puts the terminal in cooked mode while it
        prints: during a flood it is nearly always printing, and a key typed then is
        taken by the terminal itself (Ctrl-D as end of file, Ctrl-C as SIGINT) or
        echoed through the lines. The terminal stays raw here, so every key reaches
        the prompt.
        """
        app = get_app_or_none()
        if app is None or not app.is_running or self._plain_prompt is not None:
            self.drain()
            return
        app.renderer.erase()
        try:
            more = self.drain(DRAIN_STEP)
        finally:  # erasing forgot how far the screen goes down: ask again, as
            self._ask_where(app)  # run_in_terminal does,
            app.invalidate()  # or the bottom toolbar is not drawn any more
        if more:
            self.call_soon(self._flush)

    def _ask_where(self, app: Application[object]) -> None:
        """Ask the terminal where the cursor is. Until it has answered once, prompt_toolkit
        asks only while no answer is on its way: that answer, sent before these lines
        were drawn, tells where the prompt was, and the prompt would take every row
        below that (the lines drawn since pushed up the screen). It is not believed:
        the prompt is drawn again and asks anew. (prompt_toolkit 3 takes the answer in
        ``Renderer.report_absolute_cursor_row``, into ``_min_available_height``; a release
        without it is left to ask as it does.)"""
        renderer = app.renderer
        if (renderer.cpr_support is CPR_Support.UNKNOWN and renderer.waiting_for_cpr
                and hasattr(renderer, "_min_available_height")
                and "report_absolute_cursor_row" not in vars(renderer)):
            believed = renderer.report_absolute_cursor_row

            def out_of_date(row: int) -> None:
                del renderer.report_absolute_cursor_row  # the next answer is believed
                height = renderer._min_available_height
                believed(row)  # the terminal answers: so it can be asked
                renderer._min_available_height = height
                self.call_soon(self._flush)

            renderer.report_absolute_cursor_row = out_of_date  # type: ignore[method-assign]
        renderer.request_absolute_cursor_position()

    def drain(self, step: int | None = None) -> bool:
        """Print the queued lines now (on the event loop's thread): all of them, or
        whole batches up to about ``step`` characters; whether lines remain."""
        with self._lock:
            count = taken = freed = 0
            for _, size, cost in self._pending:
                if step is not None and count and taken + size > step:
                    break
                count += 1
                taken += size
                freed += cost
            batches, self._pending = self._pending[:count], self._pending[count:]
            more = bool(self._pending)
        lines = [line for batch, _, _ in batches for line in batch]
        if not lines:
            return more
        try:
            self.write_now(*lines)
        finally:  # only once written (a paused terminal holds this): the reader may go on
            with self._drained:
                self._backlog -= freed
                self._written_at = time.monotonic()
                self._drained.notify_all()
        return more

    def write_now(self, *lines: Shown) -> None:
        """Write ``lines`` at once, past any queue (on the event loop's thread)."""
        if self._plain_prompt is not None:
            self._write_plain(as_fragments(lines), self._plain_prompt())
        elif isinstance(self._output, Vt100_Output):
            self._write_vt100(lines)
        else:
            self._write_formatted(as_fragments(lines))

    def _write_plain(self, lines: list[Fragments], prompt_line: str) -> None:
        """No escape codes at all: end the line being typed, print, show it again."""
        text = "".join(plain(line) + "\n" for line in lines)
        self._output.write_raw(("\n" if prompt_line else "") + text + prompt_line)
        self._output.flush()

    def _write_formatted(self, lines: list[Fragments]) -> None:
        fragments: Fragments = []
        columns = self.columns()
        for line in lines:
            for row in fold(line, columns):
                fragments.extend(row)
                fragments.append(("", "\n"))
        print_formatted_text(self._output, FormattedText(fragments), self._style,
                             color_depth=self._depth())

    def _depth(self) -> ColorDepth:
        return self._color_depth or self._output.get_default_color_depth()

    def _write_vt100(self, lines: tuple[Shown, ...]) -> None:
        """One write for the whole batch, with each style's sequences computed once."""
        parts: list[str] = []
        columns = self.columns()
        for line in lines:
            if not isinstance(line, Rendered):
                parts.append(self.folded_text(line, columns))
            elif line.fits(columns):
                parts.append(line.text)
            else:  # made for a terminal resized since
                parts.extend([self.folded_text(each, columns) for each in line.lines()])
        self._output.write_raw("".join(parts))
        self._output.flush()

    def columns(self) -> int:
        """The terminal's width now (from any thread)."""
        return self._output.get_size().columns

    def folded_text(self, line: Fragments, columns: int) -> str:
        """:meth:`line_text` of each row of the line on a terminal ``columns`` wide."""
        return "".join([self.line_text(row) for row in fold(line, columns)])

    def line_text(self, line: Fragments) -> str:
        """A line as the terminal's text, from reset attributes to reset attributes and
        ``\\r\\n`` (the prompt was erased before, which resets them)."""
        opening, closing = self.opening(line)
        return opening + closing

    def opening(self, line: Fragments) -> tuple[str, str]:
        """A line as the terminal's text, from reset attributes, with its last style left
        in force (text may follow in it), and the text that ends the line.

        A style's sequence is written only when the style changes, without its leading
        reset when the attributes are reset already. The text is already sanitised (no
        control characters), so it is written as it is; only the style sequences come
        from prompt_toolkit.
        """
        sequences = self._sequences
        parts: list[str] = []
        append = parts.append
        current = _RESET
        for style, text in line:
            pair = sequences.get(style)
            if pair is None:
                pair = sequences[style] = self._sequences_of(style)
            if pair[0] is not current:
                append(pair[1] if current is _RESET else pair[0])
                current = pair[0]
            append(text)
        return "".join(parts), "\r\n" if current is _RESET else _RESET + "\r\n"

    def _sequences_of(self, style: str) -> tuple[str, str]:
        """The escape sequence prompt_toolkit would emit for ``style``, which starts by
        resetting the attributes (``ESC[0;...m``), and the same without that reset, for
        where the attributes are reset already; a style with no attributes has the
        reset itself for both."""
        capture = io.StringIO()
        probe = Vt100_Output(capture, lambda: Size(rows=24, columns=80), term="xterm")
        probe.set_attributes(self._style.get_attrs_for_style_str(style), self._depth())
        probe.flush()
        sequence = capture.getvalue()
        if sequence == "\x1b[0m":
            return _RESET, _RESET
        if sequence.startswith("\x1b[0;"):
            return sequence, "\x1b[" + sequence[len("\x1b[0;"):]
        return sequence, sequence
