"""Key bindings: Ctrl-C clears a line and never leaves; Tab completes at once, as irssi
does; a long paste goes in as a marker."""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys

from .paste import Pastes

HOW_TO_LEAVE = "To leave, type !quit or press Ctrl-D."
"""What Ctrl-C on an empty line says: a reflexive second Ctrl-C never ends a session."""


def chat_bindings(pastes: Pastes, interrupted: Callable[[], None]) -> KeyBindings:
    """The shell's keys; ``interrupted`` is called for Ctrl-C (or SIGINT) on an empty
    line."""
    bindings = KeyBindings()

    @bindings.add(Keys.Any)
    def _type(event: KeyPressEvent) -> None:
        """Insert what was typed; a key that means nothing here (Shift-PageUp sends
        ``ESC[5;2~``) is dropped, never inserted into the line and sent."""
        if "\x1b" not in event.data:
            event.current_buffer.insert_text(event.data * event.arg)

    @bindings.add("pageup")
    @bindings.add("pagedown")
    def _no_page(event: KeyPressEvent) -> None:
        """Nothing to page through: the draft stays (these would recall history)."""

    @bindings.add(Keys.BracketedPaste)
    def _paste(event: KeyPressEvent) -> None:
        """As prompt_toolkit's own, but a long paste goes in as a marker."""
        text = event.data.replace("\r\n", "\n").replace("\r", "\n")
        event.current_buffer.insert_text(pastes.marker(text))

    @bindings.add("c-c")
    @bindings.add(Keys.SIGINT)
    def _interrupt(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.text:  # cleared, not lost: Ctrl-Y brings it back
            event.app.clipboard.set_text(buffer.text)
            buffer.reset()
        else:
            interrupted()

    @bindings.add("tab")
    def _complete(event: KeyPressEvent) -> None:
        """First Tab inserts the best match; later ones cycle, wrapping around."""
        buffer = event.current_buffer
        if buffer.complete_state:
            buffer.complete_next()
        else:
            buffer.start_completion(select_first=True)

    return bindings
