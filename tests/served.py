"""``chatsh serve`` as a process, run from the console script: its log collected as it
comes, its ports read from the line that says where it listens, stopped by its id."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

from conftest import CHATSH, DEADLINE, chatsh_env

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)(?: and 127\.0\.0\.1:(\d+))?")


class Served:
    """``chatsh serve --port 0 ARGS...``; ``port`` is the first listener's, ``tls_port``
    the TLS one's beside it (if any)."""

    def __init__(self, *args: str, **env: str) -> None:
        """``env``: variables for the server (``CHATSH_EVENT_LOOP="asyncio"``)."""
        self.proc = subprocess.Popen([CHATSH, "serve", "--port", "0", *args],
                                     stderr=subprocess.PIPE, env=chatsh_env(**env))
        self.log: list[str] = []
        self.port = 0
        self.tls_port: int | None = None
        started = threading.Event()
        threading.Thread(target=self._read_log, args=(started,), daemon=True).start()
        if not (started.wait(DEADLINE) and self.port):
            self.kill()
            raise AssertionError(f"chatsh serve did not start: {self.log}")

    def _read_log(self, started: threading.Event) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.log.append(line)
            found = LISTENING.search(line)
            if found and not self.port:
                self.port = int(found[1])
                self.tls_port = int(found[2]) if found[2] else None
                started.set()
        started.set()

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.log)

    def wait_logged(self, text: str, timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while not self.logged(text):
            assert time.monotonic() < deadline, f"never logged {text!r}: {self.log}"
            time.sleep(0.02)

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def stop(self) -> int:
        """SIGTERM, then the exit status (SIGKILL if it does not end in time)."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
