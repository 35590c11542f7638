"""The chat server: asyncio streams, one task per connection, bounded buffers.

A sender never waits for a recipient: deliveries are written to the recipient's
transport without awaiting it, and a recipient whose unsent output passes
``max_queue`` bytes is disconnected. Each connection reads through the pure
:class:`~chatsh.framing.LineFramer`, so no line over ``max_line`` is held.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from . import protocol as p
from .backplane import Backplane, LocalBackplane, Parcel
from .framing import Line, LineFramer, OversizedLine
from .keepalive import keep_alive
from .limits import (
    BACKED_UP,
    MAX_LOGIN_LINE,
    BacklogBound,
    PendingGate,
)
from .names import ECHOBOT
from .registry import Refusal, UserRegistry
from .serverconfig import ServerConfig
from .serverlog import Log, LogLine, PeerLog, log_to_stderr, logged_name
from .serving.access import Allowed
from .serving.door import Door
from .serving.drain import Stopping
from .serving.listeners import Listeners
from .serving.stats import ServerStats
from .serving.tls import ServerTls
from .sockets import fit_to_descriptors, reset
from .words import CURRENT, Word

READ_SIZE = 256 * 1024
ACCEPT_WARNING_INTERVAL = 60.0


@dataclass
class Later:
    """A reply only the backplane can give: a LIST, or a SEND to nobody on this node."""

    index: int
    """Where the reply goes among the sender's replies of this read."""
    destination: str = ""
    delivery: bytes = b""


@dataclass(eq=False)
class Session:
    """One connection: its writer, address and (once logged in) its name."""

    writer: asyncio.StreamWriter
    address: str
    peer: str
    """Address and port."""
    name: str | None = None
    refusals: int = 0
    unsent: list[bytes] = field(default_factory=list)
    """What this turn of the event loop has for the connection, written at its end."""
    task: asyncio.Task[None] | None = None
    reading: bool = False
    login_logged: bool = False
    """Whether the log has its login (then its logout is written too)."""
    """Whether its task waits for the peer (a stopping server may cut that wait short)."""

    def send(self, data: bytes, max_queue: int) -> bool:
        """Queue ``data``; drop the connection if its queue grew past the bound."""
        transport = self.writer.transport
        if transport.is_closing():
            return False
        self.writer.write(data)
        if transport.get_write_buffer_size() > max_queue:
            transport.abort()
            return False
        return True


class ChatServer:
    """Users, routing and the per-connection protocol loop."""

    def __init__(self, config: ServerConfig | None = None, log: Log = log_to_stderr,
                 backplane: Backplane | None = None, tls: ServerTls | None = None,
                 allowed: Allowed | None = None) -> None:
        """``tls``: speak TLS (see :meth:`start`); ``allowed``: serve those addresses only."""
        self.config = config or ServerConfig()
        self.log = log
        self.stats = ServerStats()
        self.backplane: Backplane = backplane or LocalBackplane()
        self.users: UserRegistry[Session] = UserRegistry(self.backplane,
                                                         self.config.max_clients)
        """This server's own logged-in users."""
        self._sessions: set[Session] = set()
        self.listeners = Listeners()
        self.pending: PendingGate[Session] = PendingGate(
            self.config.max_pending, self.config.max_pending_per_address,
            self.config.pending_grace)
        self.backlog: BacklogBound[Session] = BacklogBound(
            lambda session: session.writer.transport.get_write_buffer_size(),
            self.config.max_total_queue)
        def later(delay: float, call: Callable[[], None]) -> asyncio.TimerHandle:
            return asyncio.get_running_loop().call_later(delay, call)

        self.peer_log = PeerLog(lambda line: self.log(line), later, self.config.log_burst,
                                self.config.log_window)
        self.login_log = PeerLog(lambda line: self.log(line), later,
                                 self.config.login_log_burst, self.config.log_window,
                                 kind="login")
        self.door = Door(allowed, tls, self.stats.refusals, self.peer_log.about)
        self._accept_warned_at = float("-inf")
        self._unsent: list[Session] = []
        """Connections with something to write at the end of this turn of the loop."""
        self.stopping = Stopping()

    async def start(self, host: str, port: int, tls_port: int | None = None) -> None:
        """Listen on ``port``, with TLS if the server has it; with a ``tls_port`` too,
        plain on ``port`` and TLS on ``tls_port``."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._quiet_accept_errors)
        fit_to_descriptors(self.pending, self.config.max_clients, self.log)
        await self.backplane.start(self._deliver, self._evict)
        await self.listeners.open(self._serve_connection, host, port,
                                  self.door.tls is not None, tls_port, READ_SIZE)

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
        ended gently (see :func:`linger`); for at most ``timeout`` seconds. :meth:`stop`
        ends what is left."""
        self.stopping.begin(timeout)
        self.listeners.close()
        await self.backplane.settle(list(self.users), self.stopping.until)
        for session in self._sessions:
            if session.reading and session.task:
                session.task.cancel()
        await self.stopping.wait({session.task for session in self._sessions if session.task})

    async def stop(self) -> None:
        if self.listeners:
            self.listeners.close()
            for session in list(self._sessions):
                session.writer.transport.abort()
            self.stopping.cut_short()
            await self.listeners.wait_closed()
        await self.backplane.close()
        self.peer_log.flush()
        self.login_log.flush()

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter, *, secure: bool) -> None:
        address, port = writer.get_extra_info("peername")[:2]
        session = Session(writer, address, f"{address}:{port}", task=asyncio.current_task())
        if self.door.refuses(writer.transport, address, session.peer):
            return
        keep_alive(writer.get_extra_info("socket"))
        for old in self.pending.admit(session, address):
            self.stats.refusals["waiting_full"] += 1
            self.peer_log.about(old.address, LogLine(
                f"closed {old.peer}: the oldest of too many connections waiting to log in",
                "closed", old.peer))
            old.writer.transport.abort()
        self.peer_log.about(address, LogLine(f"connection from {session.peer}", "connect",
                                             session.peer))
        self._sessions.add(session)
        try:
            await self._converse(reader, session, secure)
        except TimeoutError:  # not logged in by the deadline: what it did not read goes too
            self.stats.refusals["login_deadline"] += 1
            reset(writer.transport)  # the kernel may hold unread replies, not only asyncio
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            self._write(session)  # what this turn had for it goes before the close
            if (session.name is not None and self.users.leave(session.name, session)
                    and session.login_logged):
                self.log(LogLine(f"{logged_name(session.name)} logged out ({session.peer})",
                                 "logout", session.peer, session.name))
            self._sessions.discard(session)
            self.pending.release(session)
            self.backlog.forget(session)
            self.peer_log.about(address, LogLine(f"connection closed {session.peer}",
                                                 "disconnect", session.peer, session.name or ""))
            if self.stopping.draining:
                self.stopping.end(reader, writer)
            else:
                writer.close()

    async def _converse(self, reader: asyncio.StreamReader, session: Session,
                        secure: bool) -> None:
        """Read lines until the peer goes; the first one must log in, and until one does,
        every wait (the TLS handshake, a read, a claim, a drain) counts against the login
        deadline."""
        framer = LineFramer(self.config.max_line)
        async with asyncio.timeout(self.pending.handshake_timeout(
                self.config.handshake_timeout)) as login_deadline:
            if secure and not await self.door.shake_hands(session.writer, session.address,
                                                          session.peer):
                return
            while not self.stopping.draining:
                session.reading = True
                data = await reader.read(READ_SIZE)
                session.reading = False
                self.stats.bytes_in += len(data)
                if not data or not await self._answer(session, framer.feed(data),
                                                      login_deadline):
                    return
                if session.name is None and framer.pending > MAX_LOGIN_LINE:
                    self.stats.refusals["long_login_line"] += 1
                    self.peer_log.about(session.address, LogLine(
                        f"closed {session.peer}: a line of over {MAX_LOGIN_LINE} bytes before "
                        "logging in", "closed", session.peer))
                    session.unsent.append(p.BAD_RQST_BODY)  # after what this read had
                    return

    async def _answer(self, session: Session, lines: Iterable[Line | OversizedLine],
                      login_deadline: asyncio.Timeout) -> bool:
        """Answer the lines of one read; False: the connection ends."""
        writer = session.writer
        outbox: dict[Session, list[bytes]] = {session: []}
        later: list[Later] = []
        for line in lines:
            if session.name is None:
                reply = await self._login(session, line)
                outbox[session].append(reply)
                self.stats.logins[reply if session.name is None else b"HELLO"] += 1
                if session.name is not None:
                    if not login_deadline.expired():
                        login_deadline.reschedule(None)
                elif self._count_refusal(session, reply):
                    writer.write(b"".join(outbox[session]))
                    await writer.drain()
                    return False
            else:
                self._handle(session, line, outbox, later)
        if later:
            await self._settle(later, outbox[session])
        if not self._post(session, outbox):
            return False
        if writer.transport.get_write_buffer_size() > 1024 * 1024:
            await writer.drain()
        return True

    def _post(self, session: Session | None, outbox: dict[Session, list[bytes]]) -> bool:
        """Queue what one read produced; False: the sender's connection is gone.

        Everything queued in one turn of the event loop is written at its end, one
        write per connection: the many reads of a busy turn send to the same few
        connections, and each write is a system call."""
        for target, chunks in outbox.items():
            if chunks:
                if not target.unsent:
                    if not self._unsent:
                        asyncio.get_running_loop().call_soon(self._write_out)
                    self._unsent.append(target)
                target.unsent += chunks
        return session is None or not session.writer.transport.is_closing()

    def _write_out(self) -> None:
        """Write what this turn queued, one write per connection; a connection whose
        queue grows past the bound is dropped."""
        targets, self._unsent = self._unsent, []
        for target in targets:
            self._write(target)

    def _write(self, target: Session) -> None:
        """Write what is queued for one connection."""
        chunks, target.unsent = target.unsent, []
        if not chunks or target.writer.transport.is_closing():
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.stats.bytes_out += len(data)
        if target.send(data, self.config.max_queue):
            if not self.backlog.slow and target.writer.transport.get_write_buffer_size(
                    ) < BACKED_UP:
                return  # the common case, without a call
            for slow in self.backlog.note(target):
                self.stats.slow_readers += 1
                self.log(LogLine(f"dropped {logged_name(slow.name or '?')}: all slow readers "
                                 f"together over {self.config.max_total_queue} bytes",
                                 "dropped", slow.peer, slow.name or "", "warning"))
                slow.writer.transport.abort()
            return
        self.stats.slow_readers += 1
        self.log(LogLine(f"dropped {logged_name(target.name or '?')}: output queue over "
                         f"{self.config.max_queue} bytes", "dropped", target.peer,
                         target.name or "", "warning"))

    def _count_refusal(self, session: Session, refusal: bytes) -> bool:
        """Count a refused login; True when it ends the connection: BUSY and a bad header
        do, IN-USE and a refused name leave it open for another HELLO-FROM unless
        configured, up to ``max_refusals`` of them."""
        if refusal in (p.BUSY, p.BAD_RQST_HDR) or self.config.close_on_refusal:
            return True
        session.refusals += 1
        if session.refusals < self.config.max_refusals:
            return False
        self.stats.refusals["refused_logins"] += 1
        self.peer_log.about(session.address, LogLine(
            f"closed {session.peer}: {session.refusals} refused logins", "closed",
            session.peer))
        return True

    async def _login(self, session: Session, line: Line | OversizedLine) -> bytes:
        if isinstance(line, OversizedLine):
            return p.BAD_RQST_BODY
        request = p.parse_client_line(line)
        if not isinstance(request, p.HelloFrom):
            header, _, rest = line.partition(b" ")
            if CURRENT.word(bytes(header).rstrip(b"\r")) is Word.HELLO_FROM:
                self.peer_log.about(session.address, LogLine(
                    f"refused {logged_name(bytes(rest))!r} from {session.peer}: disallowed "
                    "name", "login_refused", session.peer, bytes(rest)))
                return p.BAD_RQST_BODY
            return p.BAD_RQST_HDR
        name = request.name
        held = await self.users.admit(name, session)  # deliveries that beat our own HELLO
        if isinstance(held, Refusal):
            self.peer_log.about(session.address, LogLine(
                f"refused {logged_name(name)} from {session.peer}: {held.value}",
                "login_refused", session.peer, name))
            return p.IN_USE if held is Refusal.TAKEN else p.BUSY
        session.name = name
        self.pending.release(session)
        session.login_logged = self.login_log.about(session.address, LogLine(
            f"{logged_name(name)} logged in ({session.peer})", "login", session.peer, name))
        return p.encode_hello(name) + held

    def _handle(self, session: Session, line: Line | OversizedLine,
                outbox: dict[Session, list[bytes]], later: list[Later]) -> None:
        """Answer one request from a logged-in user, adding to ``outbox``; what only
        the backplane can answer is added to ``later``, its reply left blank."""
        replies = outbox[session]
        if isinstance(line, OversizedLine):
            self.stats.requests[OversizedLine] += 1
            replies.append(p.BAD_RQST_BODY)
            return
        request = p.parse_client_line(line)
        if isinstance(request, p.SendRequest):  # (counted in stats.sends)
            self._route(session, request, outbox, later)
            return
        self.stats.requests[type(request)] += 1
        if isinstance(request, p.ListRequest):
            later.append(Later(len(replies)))
            replies.append(b"")
        elif isinstance(request, p.MalformedBody):
            replies.append(p.BAD_RQST_BODY)
        else:
            replies.append(p.BAD_RQST_HDR)

    def _route(self, session: Session, request: p.SendRequest,
               outbox: dict[Session, list[bytes]], later: list[Later]) -> None:
        assert session.name is not None
        replies = outbox[session]
        self.stats.sends += 1
        if request.destination == ECHOBOT:
            replies += (p.SEND_OK, p.encode_delivery(ECHOBOT, request.body))
            return
        delivery = p.encode_delivery(session.name, request.body)
        recipient = self.users.get(request.destination)
        if recipient is None:
            later.append(Later(len(replies), request.destination, delivery))
            replies.append(b"")
            return
        replies.append(p.SEND_OK)
        outbox.setdefault(recipient, []).append(delivery)

    async def _settle(self, later: list[Later], replies: list[bytes]) -> None:
        """Fill in the replies that waited for the backplane: one call for the routes of
        a read, one for its lists."""
        routes: dict[str, list[Later]] = {}
        lists: list[Later] = []
        for item in later:
            if item.destination:
                routes.setdefault(item.destination, []).append(item)
            else:
                lists.append(item)
        if routes:
            routed = await self.backplane.route(
                [Parcel(name, b"".join(item.delivery for item in items))
                 for name, items in routes.items()])
            for items, sent in zip(routes.values(), routed, strict=True):
                if not sent:
                    self.stats.undelivered += len(items)
                for item in items:
                    replies[item.index] = p.SEND_OK if sent else p.BAD_DEST_USER
        if lists:
            limit = self.config.max_listed - 1  # echobot is listed first
            names = await self.backplane.names(limit)
            listing = p.encode_list_ok([ECHOBOT, *(
                itertools.islice(self.users, limit) if names is None else names)])
            for item in lists:
                replies[item.index] = listing

    def _deliver(self, parcels: Sequence[Parcel]) -> None:
        """Hand deliveries from other nodes to the users of this one."""
        self._post(None, self.users.addressed(parcels))

    def _evict(self, name: str) -> None:
        session = self.users.get(name)
        if session is not None:
            self.log(LogLine(f"dropped {logged_name(name)}: another node holds the name now",
                             "dropped", session.peer, name, "warning"))
            session.writer.transport.abort()
