"""Print lines above the prompt from any thread, batched per redraw.

The socket thread calls :meth:`Display.show`; the lines wait in a list and the
event loop prints everything that has gathered in one go, so a flood costs one
redraw per batch rather than one per message.
"""

from __future__ import annotations

import asyncio
import threading

from prompt_toolkit.application import get_app_or_none, run_in_terminal
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.output import ColorDepth, Output
from prompt_toolkit.renderer import print_formatted_text
from prompt_toolkit.styles import BaseStyle

from ..texts import Fragments


class Display:
    def __init__(self, output: Output, style: BaseStyle, color_depth: ColorDepth | None,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._output = output
        self._style = style
        self._color_depth = color_depth
        self._loop = loop
        self._pending: list[Fragments] = []
        self._lock = threading.Lock()

    def show(self, *lines: Fragments) -> None:
        """Queue lines for printing; safe from any thread."""
        with self._lock:
            first = not self._pending
            self._pending.extend(lines)
        if first:
            self._loop.call_soon_threadsafe(self._flush)

    def call_soon(self, callback) -> None:
        """Run ``callback`` on the event loop after the lines queued so far."""
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
        fragments: Fragments = []
        for line in lines:
            fragments.extend(line)
            fragments.append(("", "\n"))
        print_formatted_text(self._output, FormattedText(fragments), self._style,
                             color_depth=self._color_depth or self._output.get_default_color_depth())
        self._output.flush()
