"""The chat server: a :class:`~chatsh.serving.connection.Connection` per client on
asyncio's protocols, bounded buffers.

A sender never waits for a recipient: deliveries are written to the recipient's
transport without awaiting it, and a recipient whose unsent output passes
``max_queue`` bytes is disconnected. Each connection reads through the pure
:class:`~chatsh.framing.LineFramer`, so no line over ``max_line`` is held. A logged-in
user's lines are answered as they are read, without a task (:mod:`chatsh.routing`).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable, Sequence

from . import protocol as p
from .backplane import Backplane, LocalBackplane, Parcel
from .framing import Line, OversizedLine
from .keepalive import keep_alive
from .limits import MAX_LOGIN_LINE, LoginQuota, PendingGate
from .registry import Refusal, UserRegistry
from .routing import Later, Router
from .serverconfig import ServerConfig
from .serverlog import Log, LogLine, PeerLog, log_to_stderr, logged_name
from .serving.access import Allowed
from .serving.connection import Connection
from .serving.door import Door
from .serving.drain import Stopping
from .serving.listeners import Listeners
from .serving.loops import closes_what_it_cannot_accept
from .serving.stats import LOGGED_IN, ServerStats
from .serving.tls import ServerTls
from .sockets import fit_to_descriptors, reset
from .words import CURRENT, Word

ACCEPT_WARNING_INTERVAL = 60.0
EVICTION_LINGER = 30.0
"""Seconds a user whose name another node took has to read what was passed on for him."""
BULK_READ = 64 * 1024
"""A read this large has what it produced written at once, not at the end of the turn:
uvloop reads up to 32 chunks of 256 KiB from one socket in a turn, and their replies
must meet the connection's bounds (reading paused once
:data:`~chatsh.serving.connection.BACKED_UP_HIGH` bytes are queued, the queue's bound)
as each chunk's do on asyncio's loop."""


class ChatServer(Router):
    """Users, connections, logins; routing is the :class:`~chatsh.routing.Router`'s."""

    def __init__(self, config: ServerConfig | None = None, log: Log = log_to_stderr,
                 backplane: Backplane | None = None, tls: ServerTls | None = None,
                 allowed: Allowed | None = None) -> None:
        """``tls``: speak TLS (see :meth:`start`); ``allowed``: serve those addresses only."""
        config = config or ServerConfig()
        backplane = backplane or LocalBackplane()
        super().__init__(config, log, ServerStats(), backplane,
                         UserRegistry(backplane, config.max_clients))
        self._sessions: set[Connection] = set()
        self.listeners = Listeners()
        self.pending: PendingGate[Connection] = PendingGate(
            self.config.max_pending, self.config.max_pending_per_address,
            self.config.pending_grace)
        self.quota = LoginQuota(self.config.max_clients_per_address)

        def later(delay: float, call: Callable[[], None]) -> asyncio.TimerHandle:
            return asyncio.get_running_loop().call_later(delay, call)

        self.peer_log = PeerLog(lambda line: self.log(line), later, self.config.log_burst,
                                self.config.log_window)
        self.login_log = PeerLog(lambda line: self.log(line), later,
                                 self.config.login_log_burst, self.config.log_window,
                                 kind="login")
        self.door = Door(allowed, tls, self.stats.refusals, self.peer_log.about)
        self._accept_warned_at = float("-inf")
        self._room: int | None = None
        """Connections that fit in the descriptors, on a loop that closes at once what it
        cannot accept (uvloop): there, a new connection that fills them closes the oldest
        waiting to log in (asyncio pauses accepting instead)."""
        self.stopping: Stopping[Connection] = Stopping()

    async def start(self, host: str, port: int, tls_port: int | None = None) -> None:
        """Listen on ``port``, with TLS if the server has it; with a ``tls_port`` too,
        plain on ``port`` and TLS on ``tls_port``."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._quiet_accept_errors)
        free = fit_to_descriptors(self.pending, self.config.max_clients, self.log)
        if closes_what_it_cannot_accept(loop):
            self._room = free
        await self.backplane.start(self._deliver, self._evict)
        max_line = self.config.max_line
        await self.listeners.open(lambda secure: Connection(self, max_line, secure), host,
                                  port, self.door.tls is not None, tls_port)

    def _quiet_accept_errors(self, loop: asyncio.AbstractEventLoop,
                             context: dict[str, object]) -> None:
        """Out of file descriptors, asyncio pauses accepting and tries again by itself:
        say so once a minute at most, not with a traceback per try."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE,
                                                      errno.ENOBUFS, errno.ENOMEM):
            if loop.time() - self._accept_warned_at >= ACCEPT_WARNING_INTERVAL:
                self._accept_warned_at = loop.time()
                self.log(LogLine(f"cannot accept connections for now ({exc.strerror}); "
                                 "accepting again as connections close", "accept_paused",
                                 level="warning"))
            return
        loop.default_exception_handler(context)

    @property
    def port(self) -> int:
        return self.listeners.port

    async def drain(self, timeout: float) -> None:
        """Stop gracefully: accept no more, give this server's names back at once, read
        no more, answer what was read and write what is queued, each connection then
        ended gently (see :meth:`Connection.wind_up`); for at most ``timeout`` seconds.
        :meth:`stop` ends what is left."""
        self.stopping.begin(timeout)
        self.listeners.close()
        await self.backplane.settle(list(self.users), self.stopping.until)
        for conn in list(self._sessions):
            conn.wind_up(self.stopping.until)
        await self.stopping.wait(lambda: bool(self._sessions))

    async def stop(self) -> None:
        if self.listeners:
            self.listeners.close()
            for conn in [*self._sessions, *self.stopping.lingering]:
                conn.transport.abort()
            await self.listeners.wait_closed()
        await self.backplane.close()
        self.trimmer.close()
        self.peer_log.flush()
        self.login_log.flush()

    # --- a connection's life (the connection's Host) -----------------------------

    def opened(self, conn: Connection) -> None:
        if self.door.refuses(conn.transport, conn.address, conn.peer):
            conn.forgotten = True
            return
        if self.stopping.draining:
            conn.forgotten = True
            conn.transport.abort()
            return
        keep_alive(conn.transport.get_extra_info("socket"))
        crowded = self._room is not None and len(self._sessions) >= self._room
        for old in self.pending.admit(conn, conn.address, crowded):
            self.stats.refusals["waiting_full"] += 1
            self.peer_log.about(old.address, LogLine(
                f"closed {old.peer}: the oldest of too many connections waiting to log in",
                "closed", old.peer))
            old.transport.abort()
        self.peer_log.about(conn.address, LogLine(f"connection from {conn.peer}", "connect",
                                                  conn.peer))
        self._sessions.add(conn)
        conn.start_deadline(self.pending.handshake_timeout(self.config.handshake_timeout))
        if conn.secure:
            conn.shaking_hands = True
            conn.wait_for(self._shake_hands(conn, self.door.shake_hands(conn)))

    async def _shake_hands(self, conn: Connection,
                           handshake: Awaitable[asyncio.Transport | None]) -> bool:
        secured = await handshake
        conn.shaking_hands = False
        if secured is None:
            conn.gone()
            return False
        conn.transport = secured
        return True

    def overdue(self, conn: Connection) -> None:
        """Not logged in by the deadline: what it did not read goes too."""
        if conn.name is None:
            self.stats.refusals["login_deadline"] += 1
            reset(conn.transport)  # the kernel may hold unread replies, not only asyncio
            # A TLS handshake may never end: uvloop reads a connection before the TLS
            # layer has started, and a client gone at once leaves that layer waiting, with
            # no word to this connection. The deadline ends it and forgets it all the same.
            if conn.task is not None:
                conn.task.cancel()
            conn.gone()

    def ended(self, conn: Connection) -> None:
        if conn.forgotten:
            if conn in self.stopping.lingering:
                self.stopping.lingering.discard(conn)
                self.stopping.changed()
            return
        conn.forgotten = True
        self.flush(conn)  # what this turn had for it goes before the close
        if conn.name is not None:
            self.quota.give_back(conn.address)
        if (conn.name is not None and self.users.leave(conn.name, conn)
                and conn.login_logged):
            self.log(LogLine(f"{logged_name(conn.name)} logged out ({conn.peer})",
                             "logout", conn.peer, conn.name))
        self._sessions.discard(conn)
        self.pending.release(conn)
        if self.backlog.forget(conn):
            self.trimmer.let_go()
        self.peer_log.about(conn.address, LogLine(f"connection closed {conn.peer}",
                                                  "disconnect", conn.peer, conn.name or ""))
        if self.stopping.draining:
            if not conn.transport.is_closing():
                self.stopping.lingering.add(conn)
            self.stopping.changed()

    def received(self, conn: Connection, data: bytes) -> None:
        self.stats.bytes_in += len(data)
        lines = conn.framer.feed(data)
        if conn.name is not None:
            self.relay(conn, lines)
            if len(data) >= BULK_READ:
                self.write_out()  # (see BULK_READ)
        elif lines:
            conn.wait_for(self._log_in(conn, lines))
        elif not self._fits_login(conn):
            conn.finish()

    def _fits_login(self, conn: Connection) -> bool:
        """Whether what is held of an unfinished line may still be a login: a line of
        over :data:`MAX_LOGIN_LINE` bytes before logging in is answered BAD-RQST-BODY."""
        if conn.name is not None or conn.framer.pending <= MAX_LOGIN_LINE:
            return True
        self.stats.refusals["long_login_line"] += 1
        self.peer_log.about(conn.address, LogLine(
            f"closed {conn.peer}: a line of over {MAX_LOGIN_LINE} bytes before logging in",
            "closed", conn.peer))
        self.post(conn, [p.BAD_RQST_BODY])  # after what this read had
        return False

    # --- logging in --------------------------------------------------------------

    async def _log_in(self, conn: Connection, lines: list[Line | OversizedLine]) -> bool:
        """Answer the lines of a read that came before a login; False: the connection
        ends."""
        replies: list[bytes] = []
        later: list[Later] = []
        for index, line in enumerate(lines):
            if conn.name is not None:
                rest = self.answer(conn, lines[index:], replies, later)
                if rest:
                    conn.keep(rest)
                break
            reply = await self._login(conn, line)
            replies.append(reply)
            self.stats.logins[reply if conn.name is None else LOGGED_IN] += 1
            if conn.name is None and self._count_refusal(conn, reply):
                self.post(conn, replies)
                return False
        if later:
            return await self._settled(conn, replies, later) and self._fits_login(conn)
        self.post(conn, replies)
        return self._fits_login(conn)

    def _count_refusal(self, conn: Connection, refusal: bytes) -> bool:
        """Count a refused login; True when it ends the connection: BUSY and a bad header
        do, IN-USE and a refused name leave it open for another HELLO-FROM unless
        configured, up to ``max_refusals`` of them."""
        if refusal in (p.BUSY, p.BAD_RQST_HDR) or self.config.close_on_refusal:
            return True
        conn.refusals += 1
        if conn.refusals < self.config.max_refusals:
            return False
        self.stats.refusals["refused_logins"] += 1
        self.peer_log.about(conn.address, LogLine(
            f"closed {conn.peer}: {conn.refusals} refused logins", "closed", conn.peer))
        return True

    async def _login(self, conn: Connection, line: Line | OversizedLine) -> bytes:
        if isinstance(line, OversizedLine):
            return p.BAD_RQST_BODY
        request = p.parse_client_line(line)
        if not isinstance(request, p.HelloFrom):
            header, _, rest = line.partition(b" ")
            if CURRENT.word(bytes(header).rstrip(b"\r")) is Word.HELLO_FROM:
                self.peer_log.about(conn.address, LogLine(
                    f"refused {logged_name(bytes(rest))!r} from {conn.peer}: disallowed "
                    "name", "login_refused", conn.peer, bytes(rest)))
                return p.BAD_RQST_BODY
            return p.BAD_RQST_HDR
        name = request.name
        held: bytes | Refusal = Refusal.FULL
        if self.quota.take(conn.address):
            try:
                held = await self.users.admit(name, conn)  # deliveries that beat our HELLO
            finally:
                if isinstance(held, Refusal):  # refused, or the connection ended meanwhile
                    self.quota.give_back(conn.address)
        elif len(self.users) < self.config.max_clients:
            held = Refusal.ADDRESS_FULL
            self.stats.refusals["address_full"] += 1
        if isinstance(held, Refusal):
            self.peer_log.about(conn.address, LogLine(
                f"refused {logged_name(name)} from {conn.peer}: {held.value}",
                "login_refused", conn.peer, name))
            return p.IN_USE if held is Refusal.TAKEN else p.BUSY
        conn.logged_in(name)
        self.pending.release(conn)
        conn.login_logged = self.login_log.about(conn.address, LogLine(
            f"{logged_name(name)} logged in ({conn.peer})", "login", conn.peer, name))
        return p.encode_hello(name) + held

    # --- the backplane's calls ---------------------------------------------------

    def _deliver(self, parcels: Sequence[Parcel]) -> None:
        """Hand deliveries from other nodes to the users of this one."""
        for target, chunks in self.users.addressed(parcels).items():
            self.post(target, chunks)

    def _evict(self, name: str) -> None:
        conn = self.users.get(name)
        if conn is not None:
            self.log(LogLine(f"dropped {logged_name(name)}: another node holds the name now",
                             "dropped", conn.peer, name, "warning"))
            conn.finish()  # after what was passed on for him, which he may still read
            asyncio.get_running_loop().call_later(EVICTION_LINGER, conn.transport.abort)
