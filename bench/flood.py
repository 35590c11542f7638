"""Flood the interactive shell: how fast do N incoming messages reach the screen?

chatsh runs logged in, in a pseudo-terminal, with a half-typed input line; a
server pushes N DELIVERY lines as fast as it can. We time until the last line
is on the terminal, next to a bare socket reader that prints the same lines to
the same kind of pty (the ceiling). Then the median time from one DELIVERY to
it being on screen, over single messages sent one at a time.

    python bench/flood.py [N ...]
"""

from __future__ import annotations

import os
import pty
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

from _common import env

BARE_READER = r"""
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(b"HELLO-FROM reader\n")
out = sys.stdout.buffer
buf = b""
while True:
    data = sock.recv(262144)
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\n")
    for line in lines:
        if line.startswith(b"DELIVERY "):
            _, name, body = line.split(b" ", 2)
            out.write(b"From " + name + b": " + body + b"\n")
    out.flush()
"""


class Pty:
    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env(),
                                     start_new_session=True)
        os.close(slave)
        self.seen = bytearray()

    def read_until(self, marker: bytes, timeout: float = 120.0, start: int = 0) -> float:
        deadline = time.monotonic() + timeout
        while self.seen.find(marker, start) < 0:
            start = max(start, len(self.seen) - len(marker))
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{marker!r} never appeared")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 1 << 20)
                except OSError:
                    raise TimeoutError("terminal closed") from None
        return time.monotonic()

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def drain(self) -> None:
        """Read what the terminal shows now, without waiting."""
        try:
            while select.select([self.master], [], [], 0)[0]:
                self.seen += os.read(self.master, 1 << 20)
        except OSError:
            pass

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def flood_lines(n: int) -> bytes:
    return b"".join(b"DELIVERY bob flood message number %d of the run\n" % i
                    for i in range(n - 1)) + b"DELIVERY bob LAST-%d\n" % n


def push(conn: socket.socket, data: bytes) -> None:
    """Send from a thread, so the terminal is read while the server writes (the client
    may leave before the end)."""
    def send() -> None:
        try:
            conn.sendall(data)
        except OSError:
            pass

    threading.Thread(target=send, daemon=True).start()


def serve_one(listener: socket.socket) -> socket.socket:
    conn, _ = listener.accept()
    conn.recv(65536)
    conn.sendall(b"HELLO me\n")
    return conn


@contextmanager
def logged_in_chatsh(*options: str):
    """chatsh in a pty, logged in as ``me`` to a server this bench plays by hand, with
    ``options`` added to its command line."""
    listener = socket.create_server(("127.0.0.1", 0))
    term = Pty([sys.executable, "-m", "chatsh", "--port", str(listener.getsockname()[1]),
                "--user", "me", "--no-history", *options])
    try:
        conn = serve_one(listener)
        term.read_until(b"me>")
        conn.recv(65536)  # the silent LIST after login
        conn.sendall(b"LIST-OK echobot,me,bob\n")
        yield term, conn
        conn.close()
    finally:
        term.close()
        listener.close()


def chatsh_flood(n: int) -> tuple[float, bool]:
    with logged_in_chatsh() as (term, conn):
        term.write(b"@bob half typed")
        term.read_until(b"half typed")
        mark = len(term.seen)
        data = flood_lines(n)
        start = time.monotonic()
        push(conn, data)
        end = term.read_until(b"LAST-%d" % n, start=mark)
        try:  # the input line is drawn again after the last message
            term.read_until(b"half typed", timeout=5, start=term.seen.rfind(b"LAST-%d" % n))
            intact = True
        except TimeoutError:
            intact = False
        return end - start, intact


def bare_flood(n: int) -> float:
    listener = socket.create_server(("127.0.0.1", 0))
    term = Pty([sys.executable, "-c", BARE_READER, str(listener.getsockname()[1])])
    try:
        conn = serve_one(listener)
        start = time.monotonic()
        push(conn, flood_lines(n))
        end = term.read_until(b"LAST-%d" % n)
        conn.close()
        return end - start
    finally:
        term.close()
        listener.close()


def single_latency(samples: int = 30) -> list[float]:
    with logged_in_chatsh() as (term, conn):
        times = []
        for i in range(samples):
            mark = len(term.seen)
            start = time.monotonic()
            conn.sendall(b"DELIVERY bob ping-%d\n" % i)
            times.append(term.read_until(b"ping-%d" % i, start=mark) - start)
            time.sleep(0.05)
        return times


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [1_000, 10_000, 100_000]
    print(f"{'N':>8} {'chatsh s':>9} {'msg/s':>9} {'bare s':>8} {'msg/s':>9} {'ratio':>6} input")
    for n in sizes:
        chatsh_time, intact = chatsh_flood(n)
        bare_time = bare_flood(n)
        print(f"{n:>8} {chatsh_time:>9.3f} {n / chatsh_time:>9.0f} {bare_time:>8.3f} "
              f"{n / bare_time:>9.0f} {chatsh_time / bare_time:>6.2f} "
              f"{'intact' if intact else 'BROKEN'}")
    latencies = single_latency()
    print(f"single DELIVERY to screen: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms over {len(latencies)}")


if __name__ == "__main__":
    main()
