"""Keys typed before the prompt is drawn stay hidden until the prompt shows them.

The terminal echoes what is typed while chatsh starts (the embedded server, the
prompt's imports); the prompt then shows the same keys in its line. Echo is turned
off at once, the keys stay queued for the prompt, and the terminal's own settings
come back at exit. No prompt_toolkit here: this runs before it is imported.
"""

from __future__ import annotations

import contextlib
import termios
from collections.abc import Iterator

LOCAL_FLAGS = 3
"""The index of the local modes (``lflag``) in a ``tcgetattr`` list."""


@contextlib.contextmanager
def typed_keys_hidden(fd: int) -> Iterator[None]:
    """Echo off on terminal ``fd`` for the block (nothing happens if it is no terminal)."""
    try:
        saved = termios.tcgetattr(fd)
    except (termios.error, OSError):
        yield
        return
    quiet = list(saved)
    quiet[LOCAL_FLAGS] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSANOW, saved)
