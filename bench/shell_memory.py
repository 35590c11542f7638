"""How much memory does the shell take when the server sends more than the terminal shows?

chatsh runs in a pseudo-terminal that nobody reads after the prompt is drawn (a
terminal scrolled back, paused or on a slow link), against a server played by
hand that sends as fast as chatsh reads. The shell must hold back: it stops
reading, and the server's own backpressure takes over. We sample the shell's
resident memory from /proc while it happens and report the peak (VmHWM) above
its idle size (measured just before the server starts sending).

Cases: DELIVERY lines before HELLO (held until the login verdict, then shown);
after login, a flood of short messages from one sender (with and without time
stamps) and from a new sender on every line; unknown one-character lines, and
unknown lines of control characters (each escape a fragment of its own); messages
of control characters, each shown as a visible escape; messages of emoji (four
bytes a character in memory); messages of 1 MiB.

    python bench/shell_memory.py [--mib N] [--seconds S] [CASE ...]

The target: the peak stays under idle + 64 MiB in every case.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from _common import env, peak_rss_kib, rss_kib

TARGET_MIB = 64
LINE_BYTES = 64 * 1024
"""Lines are made in chunks of about this many bytes."""


def _repeat(line: Callable[[int], bytes], mib: int) -> bytes:
    chunk = b"".join(line(index) for index in range(max(1, LINE_BYTES // len(line(0)))))
    return chunk * max(1, (mib << 20) // len(chunk))


CASES: dict[str, tuple[bool, Callable[[int], bytes]]] = {
    "before-hello": (False, lambda i: b"DELIVERY bob m\n"),
    "one-sender": (True, lambda i: b"DELIVERY bob m\n"),
    "stamped": (True, lambda i: b"DELIVERY bob m\n"),
    "many-senders": (True, lambda i: b"DELIVERY u%07d m\n" % i),
    "unknown-lines": (True, lambda i: b"Z\n"),
    "unknown-escapes": (True, lambda i: b"Z" + b"\x1b\x07" * 8 + b"\n"),
    "escapes": (True, lambda i: b"DELIVERY bob " + b"\x1b\x07" * 8 + b"\n"),
    "emoji": (True, lambda i: b"DELIVERY bob " + "\U0001f600".encode() * 4 + b"\n"),
    "1-mib-messages": (True, lambda i: b"DELIVERY bob " + b"x" * (1 << 20) + b"\n"),
}
"""Each case: whether the lines come after HELLO, and its line (by number)."""
OPTIONS = {"stamped": ["--timestamps", "%H:%M:%S"]}
"""The shell's options in a case (a time stamp makes each line fragments of its own)."""


class Shell:
    """chatsh in a pty whose output is read only until told to stop."""

    def __init__(self, port: int, *options: str) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatsh", "--port", str(port), "--user", "me", "--no-history",
             *options], stdin=slave, stdout=slave, stderr=slave, env=env(), start_new_session=True)
        os.close(slave)
        self.seen = bytearray()

    def read_until(self, marker: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{marker!r} never appeared")
            if select.select([self.master], [], [], left)[0]:
                self.seen += os.read(self.master, 1 << 20)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def _send(conn: socket.socket, data: bytes, sent: list[int]) -> None:
    view = memoryview(data)
    try:
        while view:
            count = conn.send(view[:1 << 20])
            sent[0] += count
            view = view[count:]
    except OSError:
        pass


def measure(case: str, mib: int, seconds: float) -> tuple[int, int, int]:
    """Idle RSS, peak RSS (KiB) and MiB the shell took in, for one case."""
    after_hello, line = CASES[case]
    data = _repeat(line, mib)
    listener = socket.create_server(("127.0.0.1", 0))
    shell = Shell(listener.getsockname()[1], *OPTIONS.get(case, []))
    try:
        conn, _ = listener.accept()
        conn.recv(65536)  # HELLO-FROM me
        if after_hello:
            conn.sendall(b"HELLO me\n")
            shell.read_until(b"me>")
            conn.recv(65536)  # the quiet LIST after login
            conn.sendall(b"LIST-OK me,bob\n")
        else:
            shell.read_until(b"Welcome")
            data += b"HELLO me\n"
        time.sleep(1.0)  # settled: what it takes to sit at the prompt
        idle = rss_kib(shell.proc.pid)
        sent = [0]
        threading.Thread(target=_send, args=(conn, data, sent), daemon=True).start()
        end = time.monotonic() + seconds
        while time.monotonic() < end and shell.proc.poll() is None:
            time.sleep(0.05)
        peak = peak_rss_kib(shell.proc.pid)
        conn.close()
        return idle, peak, sent[0] >> 20
    finally:
        shell.close()
        listener.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help=f"cases to run (default: all): {', '.join(CASES)}")
    parser.add_argument("--mib", type=int, default=64, help="MiB the server tries to send")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="how long to watch each case (past the 10 s login deadline)")
    args = parser.parse_args()
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"no such case: {', '.join(sorted(unknown))}")
    worst = 0
    print(f"{'case':<16} {'idle MiB':>9} {'peak MiB':>9} {'growth':>7} {'taken in':>9}")
    for case in args.cases or CASES:
        idle, peak, taken = measure(case, args.mib, args.seconds)
        growth = (peak - idle) / 1024
        worst = max(worst, round(growth))
        print(f"{case:<16} {idle / 1024:9.1f} {peak / 1024:9.1f} {growth:7.1f} {taken:6d} MiB",
              flush=True)
    print(f"worst growth {worst} MiB (target: under {TARGET_MIB} MiB)")
    return 0 if worst < TARGET_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
