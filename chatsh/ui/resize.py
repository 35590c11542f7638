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
from collections.abc import Callable, Mapping, Sequence
from itertools import zip_longest

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


def rows_added(screen: Screen, cursor: Point, columns: int, widest: Sequence[int] = ()
               ) -> int:
    """The rows a terminal reflowing to ``columns`` adds above the cursor: each row drawn
    above it wider than that (or, per ``widest``, once drawn wider) becomes several,
    and the cursor's own row is cut before the cursor when it is past the new width."""
    added = cursor.x // columns
    for y in range(min(cursor.y, screen.height)):
        drawn = max(_drawn(screen, y), widest[y] if y < len(widest) else 0)
        added += max(drawn - 1, 0) // columns
    return added


def _drawn(screen: Screen, y: int) -> int:
    """The columns up to the last character drawn in row ``y`` that is not a space."""
    return max((x + max(cell.width, 1) for x, cell in screen.data_buffer[y].items()
                if cell.char != " "), default=0)


class RowWidths:
    """How wide each row of the prompt has been drawn since the prompt was last erased
    to the screen's end. tmux clears a row to its end (when a redraw makes it shorter)
    without forgetting how wide it was, and reflows it that wide: a row of the draft
    that once held the toolbar becomes two, the second empty."""

    def __init__(self) -> None:
        self.widest: list[int] = []
        self._fresh = True

    def before(self, app: Application[str]) -> None:
        """prompt_toolkit erases to the screen's end first when it draws anew (after an
        erase, or for another width)."""
        drawn: Size | None = getattr(app.renderer, "_last_size", None)
        self._fresh = (app.renderer.last_rendered_screen is None or drawn is None
                       or drawn.columns != app.output.get_size().columns)

    def after(self, app: Application[str]) -> None:
        screen = app.renderer.last_rendered_screen
        if screen is None:
            return
        widths = [_drawn(screen, y) for y in range(screen.height)]
        if not self._fresh:
            widths = [max(new, old) for new, old in zip_longest(widths, self.widest,
                                                                 fillvalue=0)]
        self.widest = widths


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
    rows = RowWidths()
    if environ.get("TMUX"):
        app.before_render += rows.before
        app.after_render += rows.after

    def on_resize() -> None:
        screen = app.renderer.last_rendered_screen
        drawn: Size | None = getattr(app.renderer, "_last_size", None)
        columns = app.output.get_size().columns
        if screen is not None and drawn is not None and 0 < columns < drawn.columns:
            added = rows_added(screen, screen.get_cursor_position(app.layout.current_window),
                               columns, rows.widest)
            if added:
                app.output.cursor_up(added)
        resized()

    app._on_resize = on_resize  # type: ignore[method-assign]
