"""The client engine: a thin driver of :class:`~chatsh.session.ClientSession`.

The engine owns the socket, the send loop (:func:`send_all`, over
``socket.send``) and one reader thread that feeds every received byte to the
session and hands its events to the front end's callback, the login verdict
included. All protocol state lives in the session.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from collections.abc import Callable, Sequence

from . import protocol as p
from .defaults import CLIENT_MAX_LINE
from .keepalive import keep_alive
from .sanitize import sanitize
from .session import (
    MAX_HELD,
    ClientSession,
    Event,
    LoggedIn,
    LoginRefused,
    Outgoing,
    Request,
    ScriptLine,
    State,
    message_request,
    users_request,
)

HANDSHAKE_TIMEOUT = 10.0
LEAVE_LINGER = 0.5
"""Seconds a client that leaves reads on after its end of stream, for the server's close."""
READ_SIZE = 256 * 1024
JOIN_BELOW = 256 * 1024
"""Requests smaller than this in all are joined into one write."""

EventsHandler = Callable[[list[Event]], None]
"""Called on the reader thread with the events of one read (maybe none), in order."""
Verdict = LoggedIn | LoginRefused


class ConnectError(Exception):
    """The server could not be reached (its message escaped: the host may come from a
    settings file or the environment)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"Cannot connect to {sanitize(host)}:{port}: {sanitize(reason)}")
        self.host, self.port, self.reason = host, port, reason


class HandshakeTimeout(Exception):
    """The server did not answer the login in time."""


class LoginCancelled(Exception):
    """The connection was closed on this side while the login waited for its verdict."""


TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    import ssl
    from typing import Protocol

    from .tls import TlsSocket

    class _Sender(Protocol):
        """Anything with ``send``: a socket, or a test's stand-in."""

        def send(self, data: memoryview, /) -> int: ...


def send_all(sock: socket.socket | TlsSocket | _Sender, data: bytes | memoryview) -> None:
    """Write every byte of ``data``, however little each ``send`` takes."""
    view = memoryview(data)
    while view:
        sent = sock.send(view)
        view = view[sent:]


def _tls_failure(sock: socket.socket | TlsSocket) -> str:
    """Why a TLS connection failed at the TLS layer (an alert), if it did."""
    failure: str = getattr(sock, "failure", "")
    return failure


class ClientEngine:
    """A connection to one chat server, shared by the REPL, the script runner and bots."""

    _heard: ClientSession | None = None
    """The session whose login verdict the reader has handed to ``on_event`` (the
    session knows it earlier; :meth:`log_in` returns only after the front end has heard
    it, so the line saying so is never drawn after the next prompt)."""

    def __init__(self, host: str, port: int, *, max_line: int = CLIENT_MAX_LINE,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, window: int = 0,
                 tls: ssl.SSLContext | None = None) -> None:
        """``tls``: speak TLS with this context, the server's certificate checked for
        ``host``."""
        self.host, self.port = host, port
        self.tls = tls
        self.window = window
        self.max_line = max_line
        self.handshake_timeout = handshake_timeout
        self.session = ClientSession(max_line)
        self._sock: socket.socket | TlsSocket | None = None
        self._changed = threading.Condition()
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._kept = False
        """The login under way uses a connection kept open after a refusal."""
        self.heard_at = 0.0
        """When the last read from the server returned (monotonic seconds): a flood's
        start, known before its lines are parsed."""
        self._leaving: socket.socket | TlsSocket | None = None
        """The connection :meth:`leave` ended the stream of: read on, reported no more."""

    @property
    def connected(self) -> bool:
        """Logged in, on a connection this side has not closed."""
        return self.session.state is State.LOGGED_IN and self._sock is not None

    @property
    def waiting(self) -> int:
        return len(self.session.pending)

    def unanswered(self) -> tuple[Request, ...]:
        """The requests without a reply, passed over or still waiting, read under the
        reader's lock."""
        with self._changed:
            return self.session.unanswered()

    def passed_over(self) -> tuple[Request, ...]:
        """The requests the server went past, answering later ones: none will be answered."""
        with self._changed:
            return tuple(self.session.passed_over)

    # --- connection and login ---------------------------------------------

    def attach(self, sock: socket.socket) -> None:
        """Use an already connected socket (tests pass one end of a socketpair)."""
        self._sock = sock

    def log_in(self, name: str, on_events: EventsHandler) -> Verdict:
        """Send ``HELLO-FROM`` and wait for the verdict: on the connection a server kept
        open after refusing the last name (as the course's reference server does), else
        on a new one (or the attached socket).

        From here on ``on_events`` is called on the reader thread with the events
        of each read: the verdict first, then lines that came before it, then the
        rest. One deadline covers the whole handshake: :class:`HandshakeTimeout`
        when it passes.
        """
        reading = self._reader is not None and self._reader.is_alive()
        self._kept = reading
        if self._sock is not None and self._reader is not None and not reading:
            self.close()  # the server closed the connection the last name was refused on
        with self._changed:
            self.session = ClientSession(self.max_line)
            hello = self.session.log_in(name)
        if self._sock is None:
            self._sock = self._connect()
        sock = self._sock
        if not reading:
            context = contextvars.copy_context()
            self._reader = threading.Thread(
                target=context.run, args=(self._read_loop, sock, on_events),
                name="chatsh-reader", daemon=True)
            self._reader.start()
        try:
            send_all(sock, hello)
        except OSError:
            pass  # the reader sees the closed socket and reports the refusal
        with self._changed:
            self._changed.wait_for(lambda: self._heard is self.session or self._sock is not sock,
                                   self.handshake_timeout)
            verdict = self.session.verdict if self._heard is self.session else None
            cancelled = self._sock is not sock
        if verdict is None:
            self.close()
            with self._changed:
                held = self.session.abandon_login()
            on_events(held)  # what the server did say is shown, not lost
            if cancelled:
                raise LoginCancelled(f"the login to {self.host}:{self.port} was cancelled")
            raise HandshakeTimeout(f"{self.host}:{self.port} did not answer the login "
                                   f"within {self.handshake_timeout:g} s")
        if isinstance(verdict, LoginRefused) and not isinstance(
                verdict.verdict, (p.InUse, p.BadRequestBody)):
            self.close()  # BUSY, a bad header or a close: the server ends the connection
            failure = self._tls_failure(sock)
            if failure is not None:
                raise failure
            if self._retry_elsewhere(verdict):
                return self.log_in(name, on_events)
        return verdict

    def _retry_elsewhere(self, verdict: Verdict | None) -> bool:
        """Whether a refusal on a kept connection says nothing about the name, which is
        then tried on a new connection: a close without a word (the server closed it just
        before we wrote), or ``BAD-RQST-HDR`` (a published server keeps the connection
        after ``IN-USE`` and answers every later ``HELLO-FROM`` on it so)."""
        return self._kept and isinstance(verdict, LoginRefused) and (
            verdict.verdict is None or isinstance(verdict.verdict, p.BadRequestHeader))

    def _connect(self) -> socket.socket | TlsSocket:
        try:
            sock = socket.create_connection((self.host, self.port),
                                            timeout=self.handshake_timeout)
        except OSError as exc:
            raise ConnectError(self.host, self.port, exc.strerror or str(exc)) from None
        except UnicodeError:  # a label empty or over 63 characters: IDNA refuses it
            raise ConnectError(self.host, self.port, "not a valid host name") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keep_alive(sock)
        if self.tls is None:
            sock.settimeout(None)
            return sock
        from .tls import TlsError, TlsSocket

        secure = TlsSocket(sock, self.tls, self.host)
        try:
            secure.handshake()  # within the handshake deadline, as the connect was
        except TlsError as exc:
            sock.close()
            raise ConnectError(self.host, self.port, f"TLS handshake failed: {exc}") from None
        sock.settimeout(None)
        return secure

    def _tls_failure(self, sock: socket.socket | TlsSocket) -> ConnectError | None:
        """The error to raise when the server ended a TLS connection with an alert (it
        wanted a client certificate, say): no other name would fare better."""
        failure = _tls_failure(sock)
        return ConnectError(self.host, self.port, f"TLS: {failure}") if failure else None

    def close(self) -> None:
        """Close the connection; no event is reported after this."""
        with self._changed:  # a reader whose socket is not the engine's reports no more
            sock, self._sock = self._sock, None
            self._changed.notify_all()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=5)

    def leave(self, linger: float = LEAVE_LINGER) -> None:
        """Close as a polite client does: end the stream, read (and drop) what the server
        still sends until it closes, for at most ``linger`` seconds, then close. Closing
        with lines unread resets the connection, and a server still writing to it may
        die of that (the course's reference server does, for every user)."""
        with self._changed:
            sock, reader = self._sock, self._reader
            if (sock is None or reader is None or not reader.is_alive()
                    or self.session.state is not State.LOGGED_IN):
                reader = None  # nothing to read on: closed at once
            else:
                self._leaving = sock
        if sock is not None and reader is not None:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if reader is not threading.current_thread():
                reader.join(linger)
        self.close()

    # --- requests ----------------------------------------------------------

    def send_message(self, destination: str, body: str, line: ScriptLine | None = None
                     ) -> Request:
        return self.submit([message_request(destination, body, line)])[0]

    def request_users(self, line: ScriptLine | None = None, quiet: bool = False) -> Request:
        return self.submit([users_request(line, quiet)])[0]

    def submit(self, batch: Sequence[Outgoing]) -> list[Request]:
        """Send already-encoded requests in order, small ones in one write.

        With a ``window``, waits first until the batch fits among the requests
        still waiting for a reply. Raises ConnectionError if the link is gone.
        """
        with self._send_lock:
            with self._changed:
                if self.window:
                    limit = max(self.window - len(batch), 0)
                    self._changed.wait_for(
                        lambda: self.waiting <= limit or not self.connected)
                sock = self._sock
                if not self.connected or sock is None:
                    raise ConnectionError("not connected")
                parts = [part for outgoing in batch for part in self.session.send(outgoing)]
            if sum(map(len, parts)) < JOIN_BELOW:
                parts = [b"".join(parts)]
            try:
                for part in parts:
                    send_all(sock, part)
            except OSError as exc:
                raise ConnectionError(str(exc)) from None
        return [request for request, _ in batch]

    @property
    def sending(self) -> bool:
        """Whether a write is under way (a server that stopped reading holds it)."""
        return self._send_lock.locked()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no request is waiting for a reply (or the link is gone)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self.waiting or not self.connected,
                                          timeout)

    # --- reader thread -----------------------------------------------------

    def _dispatch_login(self, events: list[Event], on_events: EventsHandler,
                        sock: socket.socket | TlsSocket) -> None:
        """Events of the reads before the verdict: the waiting login hears of it once
        they are handed over. A refusal the login answers by trying again on a new
        connection (:meth:`_retry_elsewhere`) is not reported; nor is a close at the TLS
        layer, which the login reports."""
        verdict = self.session.verdict
        if self._retry_elsewhere(verdict) or (
                _tls_failure(sock) and isinstance(verdict, LoginRefused)
                and verdict.verdict is None):
            events = [event for event in events if event is not verdict]
        on_events(events)
        if verdict is not None:
            with self._changed:
                self._heard = self.session
                self._changed.notify_all()

    def _read_loop(self, sock: socket.socket | TlsSocket, on_events: EventsHandler) -> None:
        while True:
            try:
                data = sock.recv(READ_SIZE)
            except OSError:
                data = b""
            self.heard_at = time.monotonic()
            with self._changed:
                if self._sock is not sock:
                    return
                if self._leaving is sock:
                    if data:
                        continue
                    return
                events = self.session.receive_data(data)
                heard = self._heard is self.session
                self._changed.notify_all()
            if not heard:
                self._dispatch_login(events, on_events, sock)
                with self._changed:  # too much before the verdict: read no more of it
                    self._changed.wait_for(lambda: self.session.held <= MAX_HELD
                                           or self._sock is not sock)
            else:
                on_events(events)
            if not data:
                return
