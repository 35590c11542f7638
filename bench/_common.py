"""Helpers the benchmarks share: free ports, a chatsh server process, RSS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    result = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", PYTHONPATH=str(ROOT))
    result.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules compiled once
    result.setdefault("XDG_STATE_HOME", "/tmp/chatsh-bench-state")
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def chatsh_server(*args: str):
    """``chatsh serve`` in a subprocess; yields (port, Popen)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "chatsh", "serve", "--port", str(port), *args],
                            stderr=subprocess.DEVNULL, env=env())
    try:
        wait_listening(port)
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(10)


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
