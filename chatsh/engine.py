"""The client engine: one TCP connection, its reader thread and reply pairing.

The engine owns the socket. It sends with :func:`send_all` (a loop over
``socket.send``), reads on a background thread through the pure framer and
parser, and pairs each reply with the oldest request still waiting for one.
Front ends see only :class:`EngineEvent` values passed to their callback, on the
reader thread.
"""

from __future__ import annotations

import contextvars
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import protocol as p
from .framing import CLIENT_MAX_LINE, LineFramer, OversizedLine

HANDSHAKE_TIMEOUT = 10.0
READ_SIZE = 256 * 1024
JOIN_BELOW = 256 * 1024
"""Requests smaller than this in all are joined into one write."""

Wire = tuple[bytes, ...]


class ConnectError(Exception):
    """The server could not be reached."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"Cannot connect to {host}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


class HandshakeTimeout(Exception):
    """The server did not answer the login in time."""


def send_all(sock: socket.socket, data: bytes) -> None:
    """Write every byte of ``data``, however little each ``send`` takes."""
    view = memoryview(data)
    while view:
        sent = sock.send(view)
        view = view[sent:]


@dataclass(slots=True)
class Request:
    """A request waiting for its reply; ``tag`` is the front end's own."""

    kind: str
    tag: Any = None
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class Replied:
    """A reply paired with the request it answers."""

    request: Request
    event: p.ServerEvent


@dataclass(frozen=True, slots=True)
class LineTooLong:
    limit: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection ended; ``unanswered`` lists requests that got no reply."""

    unanswered: tuple[Request, ...] = field(default=())


def message_request(destination: str, body: str, tag: Any = None) -> tuple[Request, Wire]:
    """A SEND ready for :meth:`ClientEngine.submit`."""
    return Request("SEND", tag, destination), p.encode_send_parts(destination, body)


def users_request(tag: Any = None) -> tuple[Request, Wire]:
    """A LIST ready for :meth:`ClientEngine.submit`."""
    return Request("LIST", tag), (p.encode_list(),)


EngineEvent = Replied | p.ServerEvent | LineTooLong | Disconnected
_PAIRED = (p.SendOk, p.BadDestUser, p.ListOk, p.BadRequestHeader, p.BadRequestBody)


class ClientEngine:
    """A connection to one chat server, shared by the REPL and the script runner."""

    def __init__(self, host: str, port: int, *, max_line: int = CLIENT_MAX_LINE,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, window: int = 0) -> None:
        self.host, self.port = host, port
        self.window = window
        self._handshake_timeout = handshake_timeout
        self._framer = LineFramer(max_line)
        self._sock: socket.socket | None = None
        self._pending: deque[Request] = deque()
        self._changed = threading.Condition()
        self._send_lock = threading.Lock()
        self._backlog: list[bytes | OversizedLine] = []
        self._reader: threading.Thread | None = None
        self._closing = False
        self.connected = False

    # --- connection and login ---------------------------------------------

    def connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._handshake_timeout)
        except OSError as exc:
            raise ConnectError(self.host, self.port, exc.strerror or str(exc)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.attach(sock)

    def attach(self, sock: socket.socket) -> None:
        """Use an already connected socket (tests pass one end of a socketpair)."""
        sock.settimeout(self._handshake_timeout)
        self._sock = sock
        self._framer = LineFramer(self._framer.max_line)
        self._backlog = []
        self._closing = False
        self.connected = True

    def login(self, name: str) -> p.ServerEvent | None:
        """Send ``HELLO-FROM`` and wait for the verdict (None: connection closed).

        Raises :class:`HandshakeTimeout` if the server stays silent.
        """
        assert self._sock is not None
        send_all(self._sock, p.encode_hello_from(name))
        try:
            while True:
                data = self._sock.recv(READ_SIZE)
                if not data:
                    return None
                lines = self._framer.feed(data)
                for index, line in enumerate(lines):
                    if isinstance(line, OversizedLine):
                        continue
                    event = p.parse_server_line(line)
                    if not isinstance(event, p.UnknownLine):
                        self._backlog = lines[index + 1:]
                        return event
        except TimeoutError:
            raise HandshakeTimeout(f"{self.host}:{self.port} did not answer the login "
                                   f"within {self._handshake_timeout:g} s") from None
        except OSError:
            return None

    def start(self, on_event: Callable[[EngineEvent], None],
              on_batch_end: Callable[[], None] | None = None) -> None:
        """Start the reader thread; ``on_event`` is called on it for every event.

        ``on_batch_end``, if given, is called after the events of each chunk read.
        """
        assert self._sock is not None
        self._sock.settimeout(None)
        context = contextvars.copy_context()
        self._reader = threading.Thread(target=context.run,
                                        args=(self._read_loop, on_event, on_batch_end),
                                        name="chatsh-reader", daemon=True)
        self._reader.start()

    def close(self) -> None:
        self._closing = True
        self.connected = False
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=5)

    # --- requests ----------------------------------------------------------

    def send_message(self, destination: str, body: str, tag: Any = None) -> Request:
        return self.submit([message_request(destination, body, tag)])[0]

    def request_users(self, tag: Any = None) -> Request:
        return self.submit([users_request(tag)])[0]

    def submit(self, batch: list[tuple[Request, Wire]]) -> list[Request]:
        """Send already-encoded requests in order, small ones in one write.

        With a ``window``, waits first until the batch fits among the requests
        still waiting for a reply. Raises ConnectionError if the link is gone.
        """
        with self._send_lock:
            with self._changed:
                if self.window:
                    limit = max(self.window - len(batch), 0)
                    self._changed.wait_for(
                        lambda: len(self._pending) <= limit or not self.connected)
                if not self.connected or self._sock is None:
                    raise ConnectionError("not connected")
                self._pending.extend(request for request, _ in batch)
            parts = [part for _, wire in batch for part in wire]
            if sum(map(len, parts)) < JOIN_BELOW:
                parts = [b"".join(parts)]
            try:
                for part in parts:
                    send_all(self._sock, part)
            except OSError as exc:
                raise ConnectionError(str(exc)) from None
        return [request for request, _ in batch]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no request is waiting for a reply (or the link is gone)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending or not self.connected, timeout)

    @property
    def waiting(self) -> int:
        return len(self._pending)

    # --- reader thread -----------------------------------------------------

    def _read_loop(self, on_event: Callable[[EngineEvent], None],
                   on_batch_end: Callable[[], None] | None) -> None:
        assert self._sock is not None
        lines, self._backlog = self._backlog, []
        while True:
            self._dispatch(lines, on_event)
            if on_batch_end is not None:
                on_batch_end()
            try:
                data = self._sock.recv(READ_SIZE)
            except OSError:
                data = b""
            if not data:
                break
            lines = self._framer.feed(data)
        with self._changed:
            self.connected = False
            unanswered = tuple(self._pending)
            self._pending.clear()
            self._changed.notify_all()
        if not self._closing:
            on_event(Disconnected(unanswered))

    def _dispatch(self, lines: list[bytes | OversizedLine],
                  on_event: Callable[[EngineEvent], None]) -> None:
        """Parse and pair one read's lines; waiters are woken once, at the end."""
        pending = self._pending
        paired = 0
        for line in lines:
            if isinstance(line, OversizedLine):
                on_event(LineTooLong(line.limit))
                continue
            event = p.parse_server_line(line)
            if isinstance(event, _PAIRED) and pending:
                paired += 1
                on_event(Replied(pending.popleft(), event))
            else:
                on_event(event)
        if paired:
            with self._changed:
                self._changed.notify_all()
