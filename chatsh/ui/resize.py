"""A narrower terminal leaves no copy of the prompt behind.

Most terminals (tmux, VTE, kitty, iTerm2, Windows Terminal) reflow their rows when made
narrower: a row of the prompt wider than the new width becomes two or more, and the
cursor goes down with its text. prompt_toolkit, told of the resize, goes up as many
rows as it drew above the cursor and erases from there: the rows the terminal added
stay above the new prompt, where they look like lines that were sent. The cursor is
first taken up those added rows too. A terminal known not to reflow (xterm, the
Linux console, rxvt) truncates its rows instead, and nothing is added.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from prompt_toolkit.application import Application
from prompt_toolkit.data_structures import Point, Size
from prompt_toolkit.layout.screen import Screen

NOT_REFLOWING = ("linux", "rxvt", "xterm-old")
"""Beginnings of ``TERM`` of terminals that truncate their rows when made narrower."""


def reflows(environ: Mapping[str, str]) -> bool:
    """Whether the terminal likely reflows its rows on a resize: tmux always does, a
    terminal of its own known by its ``TERM`` or xterm's ``XTERM_VERSION`` does not."""
    if environ.get("TMUX"):
        return True
    return not (environ.get("TERM", "").startswith(NOT_REFLOWING)
                or environ.get("XTERM_VERSION"))


def rows_added(screen: Screen, cursor: Point, columns: int) -> int:
    """The rows a terminal reflowing to ``columns`` adds above the cursor: each row drawn
    above it wider than that becomes several, and the cursor's own row is cut before
    the cursor when it is past the new width."""
    added = cursor.x // columns
    for y in range(min(cursor.y, screen.height)):
        row = screen.data_buffer[y]
        drawn = max((x + max(cell.width, 1) for x, cell in row.items() if cell.char != " "),
                    default=0)
        added += max(drawn - 1, 0) // columns
    return added


def keep_prompt_whole(app: Application[str], environ: Mapping[str, str] = os.environ
                      ) -> None:
    """Take the cursor up the rows a reflowing terminal added, before ``app`` erases
    its prompt on a resize (prompt_toolkit 3 calls ``Application._on_resize`` on
    SIGWINCH and when it sees a new size; its renderer keeps the size it drew for in
    ``_last_size``; a release without that hook is left as it is)."""
    hook: Callable[[], None] | None = getattr(app, "_on_resize", None)
    if hook is None or not reflows(environ):
        return
    resized = hook

    def on_resize() -> None:
        screen = app.renderer.last_rendered_screen
        drawn: Size | None = getattr(app.renderer, "_last_size", None)
        columns = app.output.get_size().columns
        if screen is not None and drawn is not None and 0 < columns < drawn.columns:
            added = rows_added(screen, screen.get_cursor_position(app.layout.current_window),
                               columns)
            if added:
                app.output.cursor_up(added)
        resized()

    app._on_resize = on_resize  # type: ignore[method-assign]
