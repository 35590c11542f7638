"""Asking for the user's attention: the bell and the terminal's title.

The first alert saves the terminal's own title on its title stack and puts the
unread count in its place (``chatsh (8 unread)``); each alert rings the bell once
(unless turned off); :meth:`Attention.clear` gives the saved title back. Which
messages alert is :mod:`conversation_state`'s call.
"""

from __future__ import annotations

import contextlib

from prompt_toolkit.output import Output

BELL = "\a"
PUSH_TITLE = "\x1b[22;0t"
POP_TITLE = "\x1b[23;0t"


def _title(text: str) -> str:
    return f"\x1b]0;{text}\x1b\\"


class Attention:
    def __init__(self, output: Output, bell: bool) -> None:
        self._output = output
        self._bell = bell
        self._titled = False
        """Whether the title shows the count (the terminal's own is saved)."""

    def alert(self, unread: int) -> None:
        """Messages came that ask for attention; ``unread`` messages are unread now."""
        self._write(("" if self._titled else PUSH_TITLE) + (BELL if self._bell else "")
                    + _title(f"chatsh ({unread} unread)"))
        self._titled = True

    def recount(self, unread: int) -> None:
        """Fewer messages are unread, but some still are: the title says so, quietly."""
        if self._titled:
            self._write(_title(f"chatsh ({unread} unread)"))

    def clear(self) -> None:
        """Nothing is unread: the terminal's own title comes back."""
        if self._titled:
            self._titled = False
            self._write(POP_TITLE)

    def _write(self, sequence: str) -> None:
        """Write at once; a terminal that hung up (EIO) takes nothing, and the shell
        leaves as for SIGHUP."""
        with contextlib.suppress(OSError):
            self._output.write_raw(sequence)
            self._output.flush()
