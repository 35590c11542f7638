"""The user list kept fresh while the shell is open, quietly.

Every :data:`EVERY` seconds the shell asks for the list again, as its own request:
nothing of the answer is shown, an error included (a server of the older version
answers ``BAD-RQST-HDR``), and a server that has no list is asked no more. Never while
a flood is being drawn: then the question waits until the messages have been quiet a
second and the screen has caught up. ``CHATSH_REFRESH`` (seconds) sets another pace.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from .conversation_state import Conversations

EVERY = 30.0
"""Seconds between two user lists the shell asks for itself."""
QUIET = 1.0
"""Seconds without a message before a flood counts as over."""
SHORTEST = 0.2
"""Seconds between two lists at the fastest, whatever ``CHATSH_REFRESH`` says."""


def refresh_every() -> float:
    """The pace: :data:`EVERY`, or ``CHATSH_REFRESH`` seconds when it holds a number."""
    try:
        return max(SHORTEST, float(os.environ.get("CHATSH_REFRESH", EVERY)))
    except ValueError:
        return EVERY


async def keep_listing(state: Conversations, ask: Callable[[], None],
                       drawn: Callable[[], bool], every: float) -> None:
    """Call ``ask`` (a quiet LIST) every ``every`` seconds while the server answers lists;
    never while messages come or ``drawn`` says the screen has lines still to draw."""
    while state.status.counted:
        await asyncio.sleep(every)
        while not state.quiet(QUIET) or not drawn() or not state.connected:
            await asyncio.sleep(QUIET)
        if state.status.counted:
            ask()
