"""A blocking test client with a deadline that keeps a transcript for reports."""

from __future__ import annotations

import socket
import struct
import time

from ..engine import send_all
from ..framing import LineFramer, OversizedLine
from ..sanitize import sanitize

SHOWN = 160
"""Characters of a protocol line shown in a report."""


def shown(line: bytes) -> str:
    """A protocol line as a report shows it: escaped, cut short."""
    text = sanitize(line.decode("utf-8", "replace"))
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({len(line)} bytes)"


class CaseFailure(Exception):
    """A case's check did not hold; carries what was sent, expected and seen."""

    def __init__(self, expected: str, got: str, sent: list[str] | None = None) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.expected, self.got, self.sent = expected, got, sent or []


class CaseSkipped(Exception):
    """The case does not apply (for example BUSY without --max-clients)."""


class Probe:
    """One connection to the server under test."""

    def __init__(self, host: str, port: int, deadline: float, max_line: int = 64 << 20) -> None:
        self.deadline = deadline
        self.sent: list[str] = []
        try:
            self.sock = socket.create_connection((host, port), timeout=self._left())
        except OSError as exc:
            raise CaseFailure("a connection", f"cannot connect: {exc}") from None
        self.framer = LineFramer(max_line)
        self.lines: list[bytes] = []

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CaseFailure("an answer before the deadline", "no answer (timed out)", self.sent)
        return left

    def send(self, data: bytes) -> None:
        self.sent.append(shown(data.rstrip(b"\n")))
        self.sock.settimeout(self._left())
        try:
            send_all(self.sock, data)
        except OSError as exc:
            raise CaseFailure("the server to accept the request", f"send failed: {exc}",
                              self.sent) from None

    def read_line(self) -> bytes | None:
        """The next line, or None when the server closed the connection."""
        while not self.lines:
            self.sock.settimeout(self._left())
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                raise CaseFailure("an answer before the deadline", "no answer (timed out)",
                                  self.sent) from None
            except OSError:
                return None
            if not data:
                return None
            for line in self.framer.feed(data):
                if isinstance(line, OversizedLine):
                    raise CaseFailure("a line of sane length", "an over-long line", self.sent)
                self.lines.append(line[:-1] if line.endswith(b"\r") else line)
        return self.lines.pop(0)

    def expect(self, expected: bytes, what: str | None = None) -> None:
        line = self.read_line()
        if line != expected:
            got = "the connection closed" if line is None else shown(line)
            raise CaseFailure(what or shown(expected), got, self.sent)

    def expect_closed(self) -> None:
        line = self.read_line()
        if line is not None:
            raise CaseFailure("the connection to be closed", shown(line), self.sent)

    def login(self, name: str) -> None:
        self.send(f"HELLO-FROM {name}\n".encode())
        self.expect(f"HELLO {name}".encode())

    def users(self) -> list[str]:
        self.send(b"LIST\n")
        line = self.read_line()
        if line is None or not line.startswith(b"LIST-OK "):
            raise CaseFailure("LIST-OK <names>", "closed" if line is None else shown(line),
                              self.sent)
        return line[8:].decode("utf-8", "replace").split(",")

    def abort(self) -> None:
        """Close with a reset, as a crashed client would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()
