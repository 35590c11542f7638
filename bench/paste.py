"""Paste a long line into the shell: how long until the server has it, and is it linear?

chatsh runs logged in, in a pseudo-terminal (the server is played by hand); the
terminal gets ``@bob `` and then a one-line bracketed paste of S MiB, then Enter.
We time from the first pasted byte until the server has read the whole SEND.
Then, during a flood of incoming messages, the time from Ctrl-D on an empty line
to chatsh's exit.

    python bench/paste.py [MIB ...]
"""

from __future__ import annotations

import os
import sys
import threading
import time

from flood import flood_lines, logged_in_chatsh, push

PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"


def read_request(conn, size: int) -> float:
    """Read until one SEND line of at least ``size`` bytes has arrived; the time then."""
    seen = bytearray()
    while True:
        data = conn.recv(1 << 20)
        if not data:
            raise EOFError("chatsh closed the connection")
        seen += data
        end = seen.find(b"\n", max(size, 1))
        if end >= 0:
            if not seen.startswith(b"SEND bob "):
                raise ValueError(f"unexpected request {bytes(seen[:40])!r}")
            return time.monotonic()


def paste_to_sent(mib: int) -> float:
    body = (b"0123456789abcdef" * (mib << 16))
    with logged_in_chatsh() as (term, conn):
        term.write(b"@bob ")
        term.read_until(b"@bob")
        done: list[float] = []
        reader = threading.Thread(target=lambda: done.append(read_request(conn, len(body))),
                                  daemon=True)
        reader.start()
        start = time.monotonic()
        view = memoryview(PASTE_START + body + PASTE_END + b"\r")
        while view:  # the pty takes what it can; keep reading its output meanwhile
            try:
                written = os.write(term.master, view[:65536])
            except BlockingIOError:
                written = 0
            view = view[written:]
            term.drain()
        reader.join(600)
        return done[0] - start


def ctrl_d_under_flood(lines: int = 200_000) -> float:
    with logged_in_chatsh() as (term, conn):
        push(conn, flood_lines(lines))
        term.read_until(b"flood message number 1000 ")
        start = time.monotonic()
        term.write(b"\x04")
        deadline = start + 60
        while term.proc.poll() is None:
            if time.monotonic() > deadline:
                return float("inf")
            term.drain()
            time.sleep(0.005)
        return time.monotonic() - start


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [1, 4, 16]
    print(f"{'MiB':>4} {'paste to sent s':>16} {'s per MiB':>10}")
    for mib in sizes:
        seconds = paste_to_sent(mib)
        print(f"{mib:>4} {seconds:>16.2f} {seconds / mib:>10.2f}", flush=True)
    exits = [ctrl_d_under_flood() for _ in range(5)]
    print("Ctrl-D to exit under a flood: " + ", ".join(f"{s:.2f}" for s in exits) + " s")


if __name__ == "__main__":
    main()
