"""How a stopping server ends a connection without losing what it queued for it."""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios
from collections.abc import Callable
from typing import Generic, TypeVar

Conn = TypeVar("Conn")

LOOK_AGAIN = 0.02
"""Seconds between two looks at whether the peer has everything sent to it."""


def unacknowledged(sock: socket.socket | None) -> int:
    """Bytes sent on ``sock`` that the peer has not acknowledged yet (0 where the
    system cannot say)."""
    if sock is None:
        return 0
    try:
        held = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    count: int = struct.unpack("i", held)[0]
    return count


class Stopping(Generic[Conn]):
    """A stopping server's state: whether it drains, until when, and the connections it
    is ending gently (see :meth:`chatsh.serving.connection.Connection.wind_up`)."""

    def __init__(self) -> None:
        self.draining = False
        self.until = 0.0
        """The loop's time by which the drain ends."""
        self.lingering: set[Conn] = set()
        self._changed = asyncio.Event()

    def begin(self, timeout: float) -> None:
        self.draining = True
        self.until = asyncio.get_running_loop().time() + timeout

    def changed(self) -> None:
        """A connection ended or started to linger."""
        self._changed.set()

    async def wait(self, busy: Callable[[], bool]) -> None:
        """Wait until nothing is ``busy`` and nothing lingers, at most until the drain's
        end."""
        loop = asyncio.get_running_loop()
        while busy() or self.lingering:
            left = self.until - loop.time()
            if left <= 0:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return
