"""A blocking test client with a deadline that keeps a transcript for reports."""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time

from ..framing import LineFramer, OversizedLine
from ..sanitize import visible_escape
from ..tls import TlsError, TlsSocket
from ..words import CURRENT, WITH_BODY, Version, Word

SHOWN = 160
"""Characters of a protocol line shown in a report."""
REPORT_CUT = 600
"""Characters of one report field (what was expected, what arrived, a note)."""
SEND_PIECE = 256 * 1024
"""Bytes handed to one ``send()``, so that a large write keeps to the deadline."""


def escaped(text: str, limit: int = REPORT_CUT, size: str = "") -> str:
    """``text`` as a report shows it: every character that is not printable (controls,
    bidi and other invisible characters, separators but the space, surrogates,
    non-characters) as a visible escape such as ``^[`` or ``<U+202E>``, so that nothing
    reaches a terminal, JSON or XML raw; cut to ``limit`` characters, ending with
    ``size`` (or the length) when cut. Escaping what is already escaped changes nothing."""
    if text.isprintable() and len(text) <= limit:
        return text
    safe = "".join(c if c.isprintable() else visible_escape(c) for c in text[:limit])
    if len(safe) <= limit and len(text) <= limit:
        return safe
    tail = f"... ({size or f'{len(text)} characters'})"
    return safe[:limit - len(tail)] + tail


def shown(line: bytes) -> str:
    """A protocol line as a report shows it: escaped, bytes that are not UTF-8 as
    ``\\xff``, cut short."""
    return escaped(line.decode("utf-8", "backslashreplace"), SHOWN, f"{len(line)} bytes")


def spelt(word: Word, *parts: str | bytes, version: Version = CURRENT) -> bytes:
    """A protocol line as ``version`` spells it, without its newline: the word, then each
    of ``parts`` after a space (``spelt(Word.DELIVERY, "bob", "hi")`` is
    ``b"DELIVERY bob hi"``), as a probe reads a line and before :meth:`Probe.say` adds
    the newline."""
    return b" ".join([version.spelling[word],
                      *(part if isinstance(part, bytes) else part.encode() for part in parts)])


def is_line(got: bytes | None, word: Word, version: Version = CURRENT) -> bool:
    """Whether ``got`` is a line of ``word`` as ``version`` spells it: the word and a
    space for a word a body follows (a ``LIST-OK`` with any names, say), else the word
    alone."""
    if got is None or word not in WITH_BODY:
        return got == version.spelling[word]
    return got.startswith(version.spelling[word] + b" ")


def split_names(listed: bytes) -> list[str]:
    """The names of a LIST-OK line, as they stand between its commas."""
    return listed.partition(b" ")[2].decode("utf-8", "replace").split(",")


class CaseFailure(Exception):
    """A case's check did not hold; carries what was sent, expected and seen."""

    def __init__(self, expected: str, got: str, sent: list[str] | None = None) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.expected, self.got, self.sent = expected, got, sent or []


class DeadlinePassed(CaseFailure):
    """The case's deadline passed while waiting for the server."""


class CaseSkipped(Exception):
    """The case does not apply (for example BUSY without --max-clients)."""


class Probe:
    """One connection to the server under test."""

    def __init__(self, host: str, port: int, deadline: float, max_line: int = 64 << 20,
                 tls: ssl.SSLContext | None = None) -> None:
        self.deadline = deadline
        self.last_request = time.monotonic()
        """When the last request was sent (the connection made, before any)."""
        self.sent: list[str] = []
        try:
            self.sock: socket.socket | TlsSocket = socket.create_connection(
                (host, port), timeout=self._left())
        except OSError as exc:
            raise CaseFailure("a connection", f"cannot connect: {exc}") from None
        if tls is not None:
            self.sock = TlsSocket(self.sock, tls, host)
            try:
                self.sock.handshake()
            except TlsError as exc:
                self.sock.close()
                raise CaseFailure("a TLS handshake", f"it failed: {exc}") from None
        self.framer = LineFramer(max_line)
        self.lines: list[bytes] = []
        self.ended = False
        self.cut: bytes | None = None
        """What arrived after the last newline before the server closed the connection."""
        self.listed = b""
        """The last LIST-OK line, as it arrived."""
        self.unsent = 0
        """Bytes of the last write the server has not taken yet."""

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._timed_out()
        return left

    def _timed_out(self) -> DeadlinePassed:
        waited = time.monotonic() - self.last_request
        since = "the last request" if self.sent else "connecting"
        return DeadlinePassed("an answer before the deadline",
                              f"no answer in the {waited:.1f} s from {since} to the case's "
                              "deadline; the connection stayed open", self.sent)

    def send(self, data: bytes) -> None:
        """Write all of ``data`` with our own loop over ``send()``, giving up at the
        deadline however large the write."""
        self.sent.append(shown(data.rstrip(b"\n")))
        self.last_request = time.monotonic()
        view = memoryview(data)
        try:
            while view:
                self.unsent = len(view)
                self.sock.settimeout(self._left())
                view = view[self.sock.send(view[:SEND_PIECE]):]
            self.unsent = 0
        except TimeoutError:
            raise CaseFailure("the server to take the request before the deadline",
                              f"{len(view)} of its {len(data)} bytes still unsent at the "
                              "deadline: the server stopped reading, or reads too slowly",
                              self.sent) from None
        except OSError as exc:
            raise CaseFailure("the server to accept the request", f"send failed: {exc}",
                              self.sent) from None

    def read_line(self, wait: float | None = None) -> bytes | None:
        """The next line, or None when the server closed the connection. With ``wait``,
        give up after that many seconds by raising TimeoutError (the case goes on)."""
        until = self.deadline if wait is None else min(self.deadline, time.monotonic() + wait)
        while not self.lines:
            if self.ended:
                return None
            left = until - time.monotonic()
            if left <= 0:
                if wait is not None and time.monotonic() < self.deadline:
                    raise TimeoutError
                raise self._timed_out()
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            self._take(data)
        return self.lines.pop(0)

    def _take(self, data: bytes) -> None:
        """Frame what arrived; an empty ``data`` is the server's close."""
        if not data:
            self.ended = True
            cut = self.framer.rest()
            self.cut = None if cut is None else bytes(cut)
            return
        for line in self.framer.feed(data):
            if isinstance(line, OversizedLine):
                raise CaseFailure("a line of sane length", "an over-long line", self.sent)
            self.lines.append(bytes(line[:-1] if line.endswith(b"\r") else line))

    def arrived_so_far(self) -> list[bytes]:
        """The lines that have arrived and not been read, taken without waiting (for a
        report, once the deadline has passed)."""
        try:
            while not self.ended and select.select([self.sock], [], [], 0)[0]:
                self._take(self.sock.recv(1 << 20))
        except (OSError, CaseFailure):
            pass
        lines, self.lines = self.lines, []
        return lines

    def expect(self, expected: bytes, what: str | None = None) -> None:
        self.expect_one_of((expected,), what)

    def arrived(self, line: bytes | None) -> str:
        """What a report says arrived: ``line``, or (for None) the close and what it cut
        short of its newline."""
        if line is not None:
            return shown(line)
        if self.cut:
            return f"{shown(self.cut)} without its newline, then the connection closed"
        return "the connection closed"

    def say(self, word: Word, *parts: str | bytes, version: Version = CURRENT) -> None:
        """Send the request ``word`` with ``parts``, as :func:`spelt` spells it."""
        self.send(spelt(word, *parts, version=version) + b"\n")

    def request(self, word: Word, *parts: str | bytes) -> Probe:
        """:meth:`say`; this probe, to read the answer from."""
        self.say(word, *parts)
        return self

    def expect_one_of(self, options: tuple[bytes, ...], what: str | None = None) -> bytes:
        """The next line, which must be one of ``options``."""
        line = self.read_line()
        if line not in options:
            raise CaseFailure(what or " or ".join(shown(o) for o in options),
                              self.arrived(line), self.sent)
        return line

    def expect_unordered(self, expected: list[bytes], what: str) -> None:
        """The next lines are ``expected`` in any order (a DELIVERY may come at any time)."""
        got: list[bytes] = []
        while len(got) < len(expected):
            line = self.read_line()
            if line is None:
                break
            got.append(line)
        if sorted(got) != sorted(expected):
            seen = " | ".join(shown(line) for line in got)
            if len(got) < len(expected):
                seen = f"{seen or 'nothing'}, then {self.arrived(None)}"
            raise CaseFailure(what, seen, self.sent)

    def expect_closed(self) -> None:
        line = self.read_line()
        if line is not None:
            raise CaseFailure("the connection to be closed", shown(line), self.sent)

    def fate(self, grace: float) -> str:
        """What the server does within ``grace`` seconds after an answer: ``closed``, or
        ``open`` when it waits for more, or the next line it sent."""
        try:
            line = self.read_line(grace)
        except TimeoutError:
            return "open"
        return "closed" if line is None else f"sent {shown(line)}"

    def login(self, name: str) -> None:
        self.say(Word.HELLO_FROM, name)
        self.expect(spelt(Word.HELLO, name))

    def users(self, exact: bool = False) -> list[str]:
        """The names of a LIST-OK; spaces around them are dropped unless ``exact`` (only
        the format case judges them)."""
        self.say(Word.LIST)
        listed = self.read_line()
        if listed is None or not is_line(listed, Word.LIST_OK):
            raise CaseFailure("LIST-OK <names>", self.arrived(listed), self.sent)
        self.listed = listed
        names = split_names(listed)
        return names if exact else [name.strip() for name in names]

    def abort(self) -> None:
        """Close with a reset, as a crashed client would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def finish(self) -> None:
        """Say we are done writing: the server sees the end of the stream."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def drain(self, until: float) -> None:
        """Read what is left until the server closes or ``until``, so that closing
        does not reset a connection the server is still writing to."""
        try:
            while time.monotonic() < until:
                self.sock.settimeout(until - time.monotonic())
                if not self.sock.recv(1 << 20):
                    return
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()
