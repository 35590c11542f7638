"""Print lines above the prompt from any thread, batched per redraw.

The socket thread calls :meth:`Display.show`; the lines wait in a list and the
event loop prints everything that has gathered in one go, so a flood costs one
redraw per batch rather than one per message.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable

from prompt_toolkit.application import get_app_or_none, run_in_terminal
from prompt_toolkit.data_structures import Size
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.output import ColorDepth, Output
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.renderer import print_formatted_text
from prompt_toolkit.styles import BaseStyle

from ..texts import Fragments

_RESET = "\x1b[0m"


class Display:
    def __init__(self, output: Output, style: BaseStyle, color_depth: ColorDepth | None) -> None:
        self._output = output
        self._style = style
        self._color_depth = color_depth
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sequences: dict[str, str] = {}
        self._pending: list[Fragments] = []
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Print on ``loop`` from now on (the loop the prompt runs in)."""
        self._loop = loop

    def show(self, *lines: Fragments) -> None:
        """Queue lines for printing; safe from any thread."""
        with self._lock:
            first = not self._pending
            self._pending.extend(lines)
        if first:
            self.call_soon(self._flush)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the event loop after the lines queued so far."""
        assert self._loop is not None, "bind() the display to a loop first"
        self._loop.call_soon_threadsafe(callback)

    def _flush(self) -> None:
        app = get_app_or_none()
        if app is not None and app.is_running:
            run_in_terminal(self.drain)
        else:
            self.drain()

    def drain(self) -> None:
        """Print every queued line now (on the event loop's thread)."""
        with self._lock:
            lines, self._pending = self._pending, []
        if not lines:
            return
        if isinstance(self._output, Vt100_Output):
            self._write_vt100(lines)
            return
        fragments: Fragments = []
        for line in lines:
            fragments.extend(line)
            fragments.append(("", "\n"))
        print_formatted_text(self._output, FormattedText(fragments), self._style,
                             color_depth=self._depth())

    def _depth(self) -> ColorDepth:
        return self._color_depth or self._output.get_default_color_depth()

    def _write_vt100(self, lines: list[Fragments]) -> None:
        """One write for the whole batch, with each style's sequence computed once.

        The text is already sanitised (no control characters), so it is written
        as it is; only the style sequences come from prompt_toolkit.
        """
        sequences = self._sequences
        parts: list[str] = []
        for line in lines:
            for style, text in line:
                sequence = sequences.get(style)
                if sequence is None:
                    sequence = sequences[style] = self._sequence(style)
                parts.append(sequence)
                parts.append(text)
            parts.append(_RESET + "\r\n")
        self._output.write_raw("".join(parts))
        self._output.flush()

    def _sequence(self, style: str) -> str:
        """The escape sequence prompt_toolkit would emit for ``style``."""
        capture = io.StringIO()
        probe = Vt100_Output(capture, lambda: Size(rows=24, columns=80), term="xterm")
        probe.reset_attributes()
        probe.set_attributes(self._style.get_attrs_for_style_str(style), self._depth())
        probe.flush()
        return capture.getvalue()
