"""Whether the terminal has the focus, from xterm's focus reports (mode 1004).

While the chat prompt runs, the terminal is asked to report focus changes
(``CSI ? 1004 h``; xterm, tmux, kitty, iTerm2, GNOME Terminal answer ``CSI I`` when
the window gets the focus and ``CSI O`` when it loses it); the request is taken back
(``CSI ? 1004 l``) when the shell leaves or is suspended, so the login shell never
gets a report as typed text. A report is taken out of the input before any key is
read from it, whole or split over two reads, never inside a paste: it never reaches
the input line. A terminal that does not report keeps the shell believing it has
the focus.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent, merge_key_bindings
from prompt_toolkit.keys import Keys

from .paste import START_MARK, LinearPasteParser

REPORTS_ON = "\x1b[?1004h"
REPORTS_OFF = "\x1b[?1004l"
FOCUS_IN = "\x1b[I"
FOCUS_OUT = "\x1b[O"
_REPORT = re.compile(r"\x1b\[([IO])")


class FocusParser(LinearPasteParser):
    """The shell's input parser, taking focus reports out for ``on_focus``."""

    def __init__(self, feed_key_callback: Callable[..., None],
                 on_focus: Callable[[bool], None]) -> None:
        super().__init__(feed_key_callback)
        self._on_focus = on_focus

    def feed(self, data: str) -> None:
        if not self._in_bracketed_paste and "\x1b[" in data:
            keys, start, pasted = data.partition(START_MARK)
            reports = _REPORT.findall(keys)
            if reports:
                self._on_focus(reports[-1] == "I")  # the last one says how it is now
                data = _REPORT.sub("", keys) + start + pasted
        super().feed(data)

    def _get_match(self, prefix: str) -> Keys | tuple[Keys, ...] | None:
        """A report split over two reads is a key of its own (see :meth:`_call_handler`)."""
        if prefix in (FOCUS_IN, FOCUS_OUT):
            return Keys.Ignore
        return super()._get_match(prefix)

    def _call_handler(self, key: str | Keys | tuple[Keys, ...], insert_text: str) -> None:
        if insert_text in (FOCUS_IN, FOCUS_OUT):
            self._on_focus(insert_text == FOCUS_IN)
            return
        super()._call_handler(key, insert_text)


class FocusReports:
    """Focus reports for the terminal of ``session``, told to ``on_focus``: asked for
    while :meth:`reporting` lasts (never on a dumb terminal: ``enabled`` False)."""

    def __init__(self, session: PromptSession[str], on_focus: Callable[[bool], None],
                 enabled: bool) -> None:
        self._output = session.output
        self._enabled = enabled
        self._on = False
        parser = getattr(session.input, "vt100_parser", None)
        if enabled and isinstance(parser, LinearPasteParser):
            session.input.vt100_parser = FocusParser(  # type: ignore[attr-defined]
                parser.feed_key_callback, on_focus)
            session.key_bindings = merge_key_bindings([session.key_bindings or KeyBindings(),
                                                       self._bindings()])

    @contextmanager
    def reporting(self) -> Iterator[None]:
        if not self._enabled:
            yield
            return
        self._ask(True)
        try:
            yield
        finally:
            self._ask(False)

    def _ask(self, on: bool) -> None:
        self._on = on
        self._output.write_raw(REPORTS_ON if on else REPORTS_OFF)
        self._output.flush()

    def _bindings(self) -> KeyBindings:
        """Ctrl-Z: the reports stop while the shell is suspended (the login shell would
        get them as typed text) and start again when it is back."""
        bindings = KeyBindings()

        @bindings.add("c-z")
        def _suspend(event: KeyPressEvent) -> None:
            def stop() -> None:
                was_on = self._on
                if was_on:
                    self._ask(False)
                os.kill(0, signal.SIGTSTP)
                if was_on:
                    self._ask(True)
            run_in_terminal(stop)

        return bindings
