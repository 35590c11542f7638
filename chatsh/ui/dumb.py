"""A dumb terminal (``TERM=dumb``): what prompt_toolkit's plain prompt leaves out.

On such a terminal prompt_toolkit echoes, after each change of the line, only the
character before the cursor: a completion that inserts ``ho`` after ``!w`` shows
as ``!wo`` while ``!who`` is run. The handler here runs first on each change and
writes what was inserted except that last character, so the line on screen is
the line that is sent.
"""

from __future__ import annotations

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.output import Output


class InsertionEcho:
    def __init__(self, buffer: Buffer, output: Output) -> None:
        self._output = output
        self._shown = ""
        buffer.on_text_changed += self._changed

    def _changed(self, buffer: Buffer) -> None:
        text = buffer.text
        inserted = len(text) - len(self._shown)
        if (inserted > 1 and text.startswith(self._shown)
                and buffer.cursor_position == len(text)):
            self._output.write(text[len(self._shown):-1])
            self._output.flush()
        self._shown = text
