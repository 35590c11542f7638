"""Script mode speed: 10,000 messages to echobot, lock-step !expect, a 64 MiB round trip.

``chatsh --script`` (the whole process, start-up included) against a minimal
raw-socket Python client that pipelines the same requests and reads every reply
(the ceiling), both against one ``chatsh serve``. Then the same count with an
``!expect`` after each message (a full round trip each) against a raw client
that waits for each echo before sending the next. Then one 64 MiB message
through echobot: wall time and chatsh's peak RSS above an idle run.

    python bench/script_throughput.py [MESSAGES]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from _common import chatsh_server, env

RAW_CLIENT = r"""
import os, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
sock = socket.create_connection(("127.0.0.1", port))
sock.sendall(b"HELLO-FROM raw%d\n" % os.getpid())
data = b"".join(b"SEND echobot message number %d\n" % i for i in range(count)) + b"LIST\n"
sock.sendall(data)
want, seen, buf = 2 * count + 2, 0, b""
out = sys.stdout.buffer
while seen < want:
    chunk = sock.recv(262144)
    if not chunk:
        break
    buf += chunk
    *lines, buf = buf.split(b"\n")
    for line in lines:
        seen += 1
        if line == b"SEND-OK":
            out.write(b"The message was sent successfully\n")
        elif line.startswith(b"DELIVERY "):
            _, name, body = line.split(b" ", 2)
            out.write(b"From " + name + b": " + body + b"\n")
out.flush()
"""


RAW_LOCKSTEP_CLIENT = r"""
import os, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
sock = socket.create_connection(("127.0.0.1", port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.sendall(b"HELLO-FROM rawstep%d\n" % os.getpid())
buf = b""
out = sys.stdout.buffer
def line():
    global buf
    while b"\n" not in buf:
        buf += sock.recv(65536)
    first, buf = buf.split(b"\n", 1)
    return first
line()
for i in range(count):
    sock.sendall(b"SEND echobot message number %d\n" % i)
    while True:
        got = line()
        if got == b"SEND-OK":
            out.write(b"The message was sent successfully\n")
        elif got.startswith(b"DELIVERY "):
            _, name, body = got.split(b" ", 2)
            out.write(b"From " + name + b": " + body + b"\n")
            break
out.flush()
"""


def timed(argv: list[str], runs: int = 3) -> tuple[float, bytes]:
    """Best wall time of ``runs`` runs of one child process, and its stdout."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env())
        best = min(best, time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{argv[:4]} failed: {result.stderr.decode()[-500:]}")
    return best, result.stdout


def chatsh_script(port: int, path: str) -> list[str]:
    """chatsh running the script at ``path`` (whose first line is the login)."""
    return [sys.executable, "-m", "chatsh", "--port", str(port), "--script", path]


def compare(title: str, lines: list[str], raw_client: str, count: int, marker: bytes,
            unit: str) -> None:
    """chatsh running ``lines`` against ``raw_client`` doing the same ``count`` things."""
    with chatsh_server() as (port, _), tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "script.txt")
        with open(path, "w") as script:
            script.write("bench\n")
            script.writelines(lines)
        raw_time, raw_out = timed([sys.executable, "-c", raw_client, str(port), str(count)])
        chatsh_time, chatsh_out = timed(chatsh_script(port, path))
    assert chatsh_out.count(marker) == count, "chatsh lost replies"
    assert raw_out.count(marker) == count, "the raw client lost replies"
    print(f"{title} (whole process, start-up included; best of 3)")
    print(f"  raw client       {raw_time:7.3f} s  {count / raw_time:9.0f} {unit}/s")
    print(f"  chatsh --script  {chatsh_time:7.3f} s  {count / chatsh_time:9.0f} {unit}/s"
          f"  ratio {chatsh_time / raw_time:.2f}")


def throughput(count: int) -> None:
    compare(f"{count} messages to echobot, pipelined",
            [f"@echobot message number {i}\n" for i in range(count)], RAW_CLIENT, count,
            b"sent successfully", "msg")


def lockstep(count: int) -> None:
    lines = [f"@echobot message number {i}\n!expect From echobot: message number {i}\n"
             for i in range(count)]
    compare(f"{count} round trips, each message followed by !expect of its echo", lines,
            RAW_LOCKSTEP_CLIENT, count, b"From echobot", "trips")


PEAK_REPORTING_CHATSH = r"""
import atexit, sys
def report():
    status = open("/proc/self/status").read()
    peak = next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]
    sys.stderr.write(f"\nPEAK-KIB {peak}\n")
atexit.register(report)
from chatsh.cli import main
sys.exit(main(sys.argv[1:]))
"""


def child_run(argv: list[str]) -> tuple[float, int, bytes]:
    """Wall time, peak RSS in KiB (since exec, reported by the child) and stdout."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_REPORTING_CHATSH, *argv[3:]],
                            capture_output=True, env=env())
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"chatsh exited with {result.returncode}: {result.stderr[-300:]!r}")
    peak = int(result.stderr.rsplit(b"PEAK-KIB ", 1)[1].split()[0])
    return wall, peak, result.stdout


def big_message(size: int) -> None:
    with chatsh_server("--max-line", str(2 * size)) as (port, _), \
            tempfile.TemporaryDirectory() as tmp:
        idle = os.path.join(tmp, "idle.txt")
        with open(idle, "w") as script:
            script.write("idle\n@echobot small\n")
        big = os.path.join(tmp, "big.txt")
        with open(big, "w") as script:
            script.write("big\n@echobot ")
            script.write("x" * (size - 1) + "Z\n")
        _, idle_rss, _ = child_run(chatsh_script(port, idle))
        wall, big_rss, out = child_run(chatsh_script(port, big))
    assert out.rstrip().endswith(b"xZ"), "the echo did not arrive whole"
    above = (big_rss - idle_rss) * 1024
    print(f"{size >> 20} MiB message round trip through echobot (whole process)")
    print(f"  wall {wall:.3f} s; peak RSS {big_rss / 1024:.0f} MiB, idle {idle_rss / 1024:.0f} MiB,"
          f" above idle {above / size:.2f}x the message")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    throughput(count)
    lockstep(count)
    big_message(64 * 1024 * 1024)


if __name__ == "__main__":
    main()
