"""How a stopping server ends a connection without losing what it queued for it."""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios

READ_SIZE = 256 * 1024
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


async def linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 until: float) -> None:
    """After what is queued, say the end (TCP: a FIN, the reading side kept open; TLS: a
    close_notify), then read and drop what the peer still sends until its side has
    acknowledged every byte, or it closes, or the loop's clock reaches ``until``; then
    close. A socket closed with unread data is reset, and a reset loses what the kernel
    still held to send, not what the peer's kernel has acknowledged."""
    sock = writer.get_extra_info("socket")
    try:
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
        async with asyncio.timeout_at(until):
            while writer.transport.get_write_buffer_size() or unacknowledged(sock):
                try:
                    if not await asyncio.wait_for(reader.read(READ_SIZE), LOOK_AGAIN):
                        return  # the peer closed
                except TimeoutError:
                    pass
    except (TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


class Stopping:
    """A stopping server's state: whether it drains, until when, and the connections it
    is ending gently."""

    def __init__(self) -> None:
        self.draining = False
        self.until = 0.0
        """The loop's time by which the drain ends."""
        self._lingering: set[asyncio.Task[None]] = set()

    def begin(self, timeout: float) -> None:
        self.draining = True
        self.until = asyncio.get_running_loop().time() + timeout

    def end(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """End a connection gently (see :func:`linger`), in a task of its own."""
        ending = asyncio.create_task(linger(reader, writer, self.until))
        self._lingering.add(ending)
        ending.add_done_callback(self._lingering.discard)

    async def wait(self, tasks: set[asyncio.Task[None]]) -> None:
        """Wait for ``tasks`` (the connections' own), then for the gentle ends, at most
        until the drain's end."""
        for waiting in (tasks, self._lingering):
            if waiting:
                left = self.until - asyncio.get_running_loop().time()
                await asyncio.wait(waiting, timeout=max(left, 0))

    def cut_short(self) -> None:
        for task in self._lingering:
            task.cancel()
