"""Memory freed by the server given back to the system: uvloop holds a slow reader's
queue as the messages themselves, and the C allocator (glibc's) keeps what they took
once freed wherever a longer-lived object lies above it in its heap; ``malloc_trim(0)``
gives the free pages back. The server asks for it half a second after a connection that
held a queue (:data:`~chatsh.limits.BACKED_UP` bytes or more) ended, once for a burst.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

TRIM_AFTER = 0.5
"""Seconds after a queue was let go before the free memory is given back (the other
queues a burst of closes lets go are given back with it)."""


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


MALLOC_TRIM = _malloc_trim()


class Trimmer:
    """Gives freed memory back, once, soon after queues were let go."""

    def __init__(self, trim: Callable[[int], int] | None = MALLOC_TRIM) -> None:
        self._trim = trim
        self._pending: asyncio.TimerHandle | None = None

    def let_go(self) -> None:
        """A queue was let go: give the memory back in :data:`TRIM_AFTER` seconds."""
        if self._trim is not None and self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(TRIM_AFTER, self._give_back)

    def _give_back(self) -> None:
        self._pending = None
        if self._trim is not None:
            self._trim(0)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
