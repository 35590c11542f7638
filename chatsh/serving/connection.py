"""One client connection of the server, on :class:`asyncio.Protocol`: no task and no
stream objects while it is idle, only this object and its transport.

Each read is answered at once in :meth:`Connection.data_received` when it can be (a
logged-in user's lines, routed here); what has to wait (a login's claim, a route or a
list only the backplane can give, the TLS handshake) runs in a task of its own while
the connection reads nothing more. Reading also stops while the connection's own unsent
output is over :data:`BACKED_UP_HIGH` bytes, until it is under :data:`BACKED_UP_LOW`;
the lines of a read whose replies passed that point wait, unanswered, until then
(:meth:`Connection.keep`).
The server behind it (a :class:`Host`) decides what each line means.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing
from collections.abc import Coroutine

from ..framing import Line, LineFramer, OversizedLine
from .drain import LOOK_AGAIN, unacknowledged

BACKED_UP_HIGH = 1024 * 1024
"""Unsent bytes of a connection past which the server stops reading from it."""
BACKED_UP_LOW = 16 * 1024
"""... and under which it reads again."""

BUSY = 1
"""Why reading is paused: a task answers the last read."""
BACKED_UP = 2
"""Why reading is paused: the connection's own output is backed up."""
FULL = 4
"""Why reading is paused: lines of a read wait, unanswered, for the output to drain."""


class Host(typing.Protocol):
    """The server a connection serves."""

    def opened(self, conn: Connection) -> None:
        """A connection came in (the host may close it at once)."""

    def received(self, conn: Connection, data: bytes) -> None:
        """Answer what was read, or hand what has to wait to :meth:`Connection.wait_for`."""

    def relay(self, conn: Connection, lines: list[Line | OversizedLine]) -> None:
        """Answer lines of a logged-in user (those :meth:`Connection.keep` kept)."""

    def ended(self, conn: Connection) -> None:
        """The connection is gone, or a stopping server ends it: forget it (once)."""

    def overdue(self, conn: Connection) -> None:
        """The login deadline passed."""

    def flush(self, conn: Connection) -> None:
        """Write what this turn of the loop queued for the connection."""


class Connection(asyncio.Protocol):
    """A client's connection: its transport, address and (once logged in) name."""

    __slots__ = ("host", "secure", "framer", "transport", "address", "peer", "name",
                 "refusals", "unsent", "login_logged", "deadline", "task", "held", "paused",
                 "eof", "forgotten", "lingering", "wind_up_by", "shaking_hands", "kept")

    def __init__(self, host: Host, max_line: int, secure: bool) -> None:
        self.host = host
        self.secure = secure
        """Whether it came to a TLS listener (its handshake is still to come)."""
        self.framer = LineFramer(max_line)
        self.transport: asyncio.Transport = typing.cast(asyncio.Transport, None)
        self.address = ""
        self.peer = ""
        """Address and port."""
        self.name: str | None = None
        self.refusals = 0
        self.unsent: list[bytes] = []
        """What this turn of the event loop has for the connection, written at its end."""
        self.login_logged = False
        """Whether the log has its login (then its logout is written too)."""
        self.deadline: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.held: list[bytes] | None = None
        """What arrived while a task answered an earlier read (reading was paused)."""
        self.paused = 0
        """Why reading is paused (:data:`BUSY`, :data:`BACKED_UP`), or 0."""
        self.eof = False
        """The peer ended its side while a task was answering."""
        self.forgotten = False
        self.lingering = False
        self.wind_up_by: float | None = None
        """A stopping server's end for the connection, once its task is done."""
        self.shaking_hands = False
        """Whether its task is the TLS handshake (nothing of the protocol read yet)."""
        self.kept: list[Line | OversizedLine] | None = None
        """Lines of a read left unanswered until the output drains (see :meth:`keep`)."""

    # --- asyncio's calls ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        if peername is None:  # (uvloop) reset before this first look: nobody to serve
            self.forgotten = True
            self.transport.abort()
            return
        address, port = peername[:2]
        self.address, self.peer = address, f"{address}:{port}"
        self.transport.set_write_buffer_limits(BACKED_UP_HIGH, BACKED_UP_LOW)
        self.host.opened(self)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # a stopping server reads and drops what still comes
        if self.task is not None or self.kept is not None:
            if self.held is None:
                self.held = []
            self.held.append(data)
            return
        self.host.received(self, data)

    def eof_received(self) -> bool:
        if self.lingering:
            self.transport.abort()  # the peer has read it all and closed
            return False
        if self.task is not None or self.kept is not None:
            self.eof = True
            return not self.secure  # (TLS cannot keep a half-closed connection)
        self.finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lingering = False
        if self.task is not None:
            self.task.cancel()
        self.held = self.kept = None
        self.gone()

    def pause_writing(self) -> None:
        self._pause(BACKED_UP)

    def resume_writing(self) -> None:
        self._resume(BACKED_UP)
        self.go_on()

    # --- the server's calls ------------------------------------------------------

    def start_deadline(self, seconds: float) -> None:
        self.deadline = asyncio.get_running_loop().call_later(seconds, self.host.overdue, self)

    def logged_in(self, name: str) -> None:
        self.name = name
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def gone(self) -> None:
        """The connection is gone: its deadline too, and the host forgets it. A failed
        TLS handshake calls it itself, as its transport went to the TLS layer, and
        asyncio then tells that layer, not this connection."""
        if self.deadline is not None:
            self.deadline.cancel()
        self.host.ended(self)

    def wait_for(self, answer: Coroutine[None, None, bool]) -> None:
        """Finish answering in a task, reading nothing more meanwhile; the coroutine
        says whether the connection stays open (closed unbegun if the task is
        cancelled before its first step: a connection lost at once)."""
        self._pause(BUSY)
        self.task = asyncio.get_running_loop().create_task(self._answer(answer))
        self.task.add_done_callback(lambda _: answer.close())

    def keep(self, lines: list[Line | OversizedLine]) -> None:
        """Leave ``lines`` of a read unanswered, and read nothing more, until the output
        drains (:meth:`go_on`): a read's lines can ask for far more than the read
        (a LIST is 5 bytes, its reply up to 25 MB)."""
        self.kept = lines
        self._pause(FULL)

    def go_on(self) -> None:
        """Answer the kept lines, then what came meanwhile, unless the output is still
        backed up or a task answers."""
        if (self.kept is None or self.task is not None or self.paused & BACKED_UP
                or self.transport.is_closing()):
            return
        lines, self.kept = self.kept, None
        self.host.relay(self, lines)
        if self.kept is None:
            self._resume(FULL)
            self._read_on()

    def finish(self) -> None:
        """Write what is queued, then close (a stopping server ends it gently)."""
        if self.wind_up_by is not None:
            self.wind_up(self.wind_up_by)
            return
        self.host.ended(self)
        self.transport.close()

    def wind_up(self, until: float) -> None:
        """A stopping server's end: answer nothing more; after what is queued say the
        end (TCP: a FIN, the reading side kept open; TLS: a close_notify), then read and
        drop what the peer still sends until it has acknowledged every byte, or it
        closes, or the loop's clock reaches ``until``; then close. A socket closed with
        unread data is reset, and a reset loses what the kernel still held to send."""
        if self.forgotten:
            return
        if self.task is not None and self.shaking_hands:
            self.task.cancel()  # nothing read to answer, nothing queued
            self.transport.abort()
            self.gone()
            return
        if self.task is not None or self.kept is not None:
            self.wind_up_by = until  # (the task's end, or the kept lines', winds it up)
            return
        self.host.ended(self)
        transport = self.transport
        if transport.is_closing():
            return
        self.lingering = True
        self.held = None
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()
        self.paused = 0
        with contextlib.suppress(RuntimeError):
            transport.resume_reading()
        self._look(until)

    def _look(self, until: float) -> None:
        transport = self.transport
        if not self.lingering:
            return
        loop = asyncio.get_running_loop()
        left = until - loop.time()
        if left > 0 and (transport.get_write_buffer_size() or unacknowledged(
                transport.get_extra_info("socket"))):
            loop.call_later(min(LOOK_AGAIN, left), self._look, until)
        else:
            transport.abort()

    # --- inside ------------------------------------------------------------------

    async def _answer(self, answer: Coroutine[None, None, bool]) -> None:
        try:
            keep = await answer
        except (ConnectionError, OSError):
            keep = False
        except Exception:  # a fault nobody foresaw ends this connection, not the server,
            self.transport.abort()  # and the task says what it was
            raise
        finally:
            self.task = None
        if self.transport.is_closing():
            return
        if not keep:
            self.finish()
            return
        self._resume(BUSY)
        if self.kept is not None:
            self.go_on()
        else:
            self._read_on()

    def _read_on(self) -> None:
        """Answer what came while reading was paused; then wind up or finish, if asked."""
        while (self.held and self.task is None and self.kept is None
               and not self.transport.is_closing()):
            self.host.received(self, self.held.pop(0))
        if self.task is None and self.kept is None:
            if self.wind_up_by is not None:
                self.wind_up(self.wind_up_by)
            elif self.eof:
                self.finish()

    def _pause(self, reason: int) -> None:
        if not self.paused:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and not self.transport.is_closing():
                self.transport.resume_reading()
