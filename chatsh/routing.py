"""The server's path of a message: a logged-in user's lines answered and routed as they
are read, what they produce written once per connection per turn of the event loop.

The common line, ``SEND <name> <body>`` to a user of this server, is parsed in
:meth:`Router.answer` itself (the checks of :func:`chatsh.protocol.parse_client_line`,
without a request object); every other line goes through the protocol's parser.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from . import protocol as p
from .backplane import Backplane, Parcel
from .framing import Line, OversizedLine
from .limits import BACKED_UP, BacklogBound
from .names import ECHOBOT
from .registry import UserRegistry
from .serverconfig import ServerConfig
from .serverlog import Log, LogLine, logged_name
from .serving.connection import BACKED_UP_HIGH, Connection
from .serving.stats import ServerStats
from .serving.trim import Trimmer
from .words import CURRENT, Word

SEND = CURRENT.spelling[Word.SEND]
SEND_OK = p.SEND_OK
BAD_RQST_BODY = p.BAD_RQST_BODY
NAMES_REMEMBERED = 4096
"""Destinations a router remembers as checked names (each at most 256 bytes)."""
LISTED_PER_USER = 16
"""Bytes a LIST's reply is counted for each user before a first reply tells its size."""


@dataclass(slots=True)
class Later:
    """A reply only the backplane can give: a LIST, or a SEND to nobody on this node."""

    index: int
    """Where the reply goes among the sender's replies of this read."""
    destination: str = ""
    delivery: bytes = b""


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode(p.ENCODING)
    except UnicodeDecodeError:
        return False
    return True


class Router:
    """Answers logged-in users' lines and writes what they produce."""

    def __init__(self, config: ServerConfig, log: Log, stats: ServerStats,
                 backplane: Backplane, users: UserRegistry[Connection]) -> None:
        self.config = config
        self.log = log
        self.stats = stats
        self.backplane = backplane
        self.users = users
        """This server's own logged-in users."""
        self.backlog: BacklogBound[Connection] = BacklogBound(
            lambda conn: conn.transport.get_write_buffer_size(), self.config.max_total_queue)
        self.trimmer = Trimmer()
        """Gives back the memory of the queues of slow readers gone."""
        self._users = users.by_name
        self._names: dict[bytes, str] = {}
        """SEND destinations seen, as the names they spell."""
        self._unsent: list[Connection] = []
        """Connections with something to write at the end of this turn of the loop."""
        self._listing_size = 0
        """The length of the last LIST reply."""
        self._output_room: int | None = None
        """What the read being answered may still add to its sender's output, once a LIST
        in it asked (see :meth:`_listed`)."""

    def relay(self, conn: Connection, lines: list[Line | OversizedLine]) -> None:
        """Answer the lines of one read of a logged-in user."""
        replies: list[bytes] = []
        later: list[Later] = []
        rest = self.answer(conn, lines, replies, later)
        if rest:
            conn.keep(rest)
        if later:
            conn.wait_for(self._settled(conn, replies, later))
        elif replies:
            self.post(conn, replies)

    async def _settled(self, conn: Connection, replies: list[bytes],
                       later: list[Later]) -> bool:
        if await self.settle(later, replies):
            self.post(conn, replies)
            return True
        self.log(LogLine(f"closed {conn.peer}: the cluster engine never told whether a SEND "
                         "of it was stored", "closed", conn.peer, conn.name or "", "warning"))
        self.post(conn, replies)  # the replies before it, then the close
        self.flush(conn)
        return False

    def answer(self, conn: Connection, lines: list[Line | OversizedLine],
               replies: list[bytes], later: list[Later]) -> list[Line | OversizedLine]:
        """Answer requests of a logged-in user: the replies to ``replies``, deliveries to
        their recipients; what only the backplane can answer is added to ``later``, its
        reply left blank. The lines left unanswered are returned: those after a LIST
        whose reply takes the sender's output past :data:`BACKED_UP_HIGH` bytes (no
        other line's replies are much longer than the line).

        A line with neither CR nor NUL whose header is SEND is checked here as
        :func:`chatsh.protocol.parse_client_line` would (a name it allows, a body that
        is not empty and is UTF-8), every other line by the parser itself. (``13 in
        line`` looks for a CR in a tenth of the time ``b"\\r" in line`` takes.)"""
        assert conn.name is not None
        head = p.delivery_head(conn.name)
        names = self._names
        sends = 0
        self._output_room = None
        unanswered = iter(lines)
        for line in unanswered:
            if (line.__class__ is not bytes or 13 in line or 0 in line
                    or (parts := line.split(b" ", 2))[0] != SEND):
                if self._other(conn, head, line, replies, later):
                    self.stats.sends += sends
                    return list(unanswered)
                continue
            body = parts[-1]
            destination = names.get(parts[1]) if len(parts) == 3 else ""
            if destination is None:
                destination = self._name(parts[1])
            if not (destination and body and (body.isascii() or _is_utf8(body))):
                self.stats.requests[p.MalformedBody] += 1
                replies.append(BAD_RQST_BODY)
                continue
            sends += 1
            self._route(conn, head, destination, body, replies, later)
        self.stats.sends += sends
        return []

    def _name(self, raw: bytes) -> str:
        """The name a SEND's destination spells, "" for none allowed; a name seen is
        remembered (at most :data:`NAMES_REMEMBERED` of them)."""
        name = p.strict_name(raw)
        if name is None:
            return ""
        if len(self._names) >= NAMES_REMEMBERED:
            self._names.clear()
        self._names[raw] = name
        return name

    def _route(self, conn: Connection, head: bytes, destination: str, body: bytes,
               replies: list[bytes], later: list[Later]) -> None:
        if destination == ECHOBOT:
            replies += (SEND_OK, p.encode_delivery(ECHOBOT, body))
            return
        recipient = self._users.get(destination)
        delivery = b"".join((head, body, b"\n"))
        if recipient is None:
            later.append(Later(len(replies), destination, delivery))
            replies.append(b"")
        elif recipient is conn:
            replies += (SEND_OK, delivery)
        else:
            replies.append(SEND_OK)
            unsent = recipient.unsent
            if not unsent:
                self._queue(recipient)
            unsent.append(delivery)

    def _other(self, conn: Connection, head: bytes, line: Line | OversizedLine,
               replies: list[bytes], later: list[Later]) -> bool:
        """Answer a line through the protocol's parser; True when its reply fills the
        sender's output (see :meth:`_listed`)."""
        if isinstance(line, OversizedLine):
            self.stats.requests[OversizedLine] += 1
            replies.append(BAD_RQST_BODY)
            return False
        request = p.parse_client_line(line)
        if isinstance(request, p.SendRequest):
            self.stats.sends += 1
            self._route(conn, head, request.destination, request.body, replies, later)
            return False
        self.stats.requests[type(request)] += 1
        if isinstance(request, p.ListRequest):
            later.append(Later(len(replies)))
            replies.append(b"")
            return self._listed(conn, replies)
        if isinstance(request, p.MalformedBody):
            replies.append(BAD_RQST_BODY)
        else:
            replies.append(p.BAD_RQST_HDR)
        return False

    def _listed(self, conn: Connection, replies: list[bytes]) -> bool:
        """Count a LIST's reply into the sender's output; True once the output passes
        :data:`BACKED_UP_HIGH` bytes. The reply is counted as long as the last one was,
        or :data:`LISTED_PER_USER` bytes a local user if that is more."""
        room = self._output_room
        if room is None:
            room = (BACKED_UP_HIGH - conn.transport.get_write_buffer_size()
                    - sum(map(len, conn.unsent)) - sum(map(len, replies)))
        room -= max(self._listing_size, LISTED_PER_USER * len(self._users))
        self._output_room = room
        return room < 0

    async def settle(self, later: list[Later], replies: list[bytes]) -> bool:
        """Fill in the replies that waited for the backplane: one call for the routes of
        a read, one for its lists. False when a route's fate is unknown: the replies
        from its own on are dropped (no reply is true, and replies keep their order)."""
        routes: dict[str, list[Later]] = {}
        lists: list[Later] = []
        untold = len(replies)
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
                    if sent is None:
                        untold = min(untold, item.index)
        if lists:
            limit = self.config.max_listed - 1  # echobot is listed first
            names = await self.backplane.names(limit)
            listing = p.encode_list_ok([ECHOBOT, *(
                itertools.islice(self.users, limit) if names is None else names)])
            self._listing_size = len(listing)
            for item in lists:
                replies[item.index] = listing
        if untold == len(replies):
            return True
        del replies[untold:]
        return False

    def post(self, target: Connection, chunks: list[bytes]) -> None:
        """Queue ``chunks`` for ``target``, written at the end of this turn of the loop.

        Everything queued in one turn of the event loop is written at its end, one
        write per connection: the many reads of a busy turn send to the same few
        connections, and each write is a system call."""
        if chunks:
            if not target.unsent:
                self._queue(target)
            target.unsent += chunks

    def _queue(self, target: Connection) -> None:
        if not self._unsent:
            asyncio.get_running_loop().call_soon(self.write_out)
        self._unsent.append(target)

    def write_out(self) -> None:
        """Write what this turn queued, one write per connection; a connection whose
        queue grows past the bound is dropped."""
        targets, self._unsent = self._unsent, []
        for target in targets:
            self.flush(target)

    def flush(self, conn: Connection) -> None:
        """Write what is queued for one connection."""
        chunks, conn.unsent = conn.unsent, []
        transport = conn.transport
        if not chunks or transport.is_closing() or conn.lingering:
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.stats.bytes_out += len(data)
        transport.write(data)
        queued = transport.get_write_buffer_size()
        if conn.kept is not None:  # lines wait for room, and there may be some now
            asyncio.get_running_loop().call_soon(conn.go_on)
        if queued > self.config.max_queue:
            transport.abort()
            self.trimmer.let_go()
            self.stats.slow_readers += 1
            self.log(LogLine(f"dropped {logged_name(conn.name or '?')}: output queue over "
                             f"{self.config.max_queue} bytes", "dropped", conn.peer,
                             conn.name or "", "warning"))
            return
        if not self.backlog.slow and queued < BACKED_UP:
            return  # the common case, without a call
        for slow in self.backlog.note(conn):
            self.stats.slow_readers += 1
            self.log(LogLine(f"dropped {logged_name(slow.name or '?')}: all slow readers "
                             f"together over {self.config.max_total_queue} bytes",
                             "dropped", slow.peer, slow.name or "", "warning"))
            slow.transport.abort()
            self.trimmer.let_go()
