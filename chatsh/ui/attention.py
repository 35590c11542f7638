"""Knowing a message came: the bell, the terminal title and the unread senders.

A message from someone the user is not writing to (as the shell judges it: the
draft's ``@name``, the ``!to`` partner, whom they just wrote to) rings the bell once
per batch (unless turned off), puts the unread count in the terminal's title and
its sender in the toolbar, until a key is pressed. The terminal's own title is saved
on its title stack first and given back when nothing is unread any more.

Every batch costs time in its own length, however many senders are unread already.
"""

from __future__ import annotations

from collections.abc import Callable

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
        self.unread: dict[str, None] = {}
        """Senders of unread messages, the latest last."""

    def arrived(self, senders: list[str], writing_to: Callable[[str], bool]) -> bool:
        """Messages came from ``senders``; whether the unread senders changed."""
        new = [name for name in dict.fromkeys(senders) if not writing_to(name)]
        if not new:
            return False
        first = not self.unread
        for name in new:  # the latest last: one heard from again moves to the end
            self.unread.pop(name, None)
            self.unread[name] = None
        self._write((PUSH_TITLE if first else "") + (BELL if self._bell else "")
                    + _title(f"chatsh ({len(self.unread)} unread)"))
        return True

    def seen(self) -> bool:
        """A key was pressed: nothing is unread now; whether anything was."""
        if not self.unread:
            return False
        self.unread = {}
        self._write(POP_TITLE)
        return True

    def _write(self, sequence: str) -> None:
        self._output.write_raw(sequence)
        self._output.flush()
