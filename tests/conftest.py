"""Shared fixtures: a real server on 127.0.0.1 port 0 and raw protocol clients."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import settings

from chatsh.embedded import EmbeddedServer
from chatsh.framing import LineFramer
from chatsh.server import ServerConfig

T = TypeVar("T")

pytest.register_assert_rewrite("cluster")

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
"""CI's Hypothesis: the same examples on every run, whatever the test order and whatever
an earlier run saved, and a failure says how to reproduce it."""
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI")
                                     else "default"))

DEADLINE = 10.0
CHECKOUT = Path(__file__).resolve().parent.parent
CHATSH = str(Path(sys.executable).parent / "chatsh")
"""The console script that ``pip install`` put beside this Python: what users run."""


@pytest.fixture(autouse=True)
def _no_real_home(tmp_path, monkeypatch):
    """No test reads or writes the real home directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


class RawClient:
    """A bare socket speaking the protocol line by line, for server tests."""

    def __init__(self, port: int, source: str | None = None) -> None:
        """Connect to 127.0.0.1:``port``, from loopback address ``source`` if given."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE,
                                             source_address=(source, 0) if source else None)
        self.framer = LineFramer()
        self.lines: list[bytes] = []
        self.name = ""
        """The name of the last login tried."""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.sock.send(view):]

    def read_line(self, timeout: float = DEADLINE) -> bytes | None:
        """The next line, or None if the server closed the connection."""
        deadline = time.monotonic() + timeout
        while not self.lines:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = self.sock.recv(1 << 20)
            if not data:
                return None
            self.lines.extend(self.framer.feed(data))
        return self.lines.pop(0)

    def login(self, name: str) -> bytes | None:
        self.name = name
        self.write(f"HELLO-FROM {name}\n".encode())
        return self.read_line()

    def closed(self, timeout: float = DEADLINE) -> bool:
        """True once the server closes the connection (after any lines), False at the deadline."""
        deadline = time.monotonic() + timeout
        try:
            while self.read_line(max(deadline - time.monotonic(), 0.01)) is not None:
                pass
        except ConnectionResetError:
            pass
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def made_by(make: Callable[..., T], stop: Callable[[T], object]) -> Iterator[Callable[..., T]]:
    """A factory fixture's body: ``make`` as a function that keeps what it made, each
    stopped with ``stop`` at the end of the test."""
    made: list[T] = []

    def tracked(*args: object, **kwargs: object) -> T:
        made.append(thing := make(*args, **kwargs))
        return thing

    try:
        yield tracked
    finally:
        for thing in made:
            stop(thing)


@pytest.fixture
def server_factory():
    with made_by(lambda **config: EmbeddedServer(ServerConfig(**config)).start(),
                 EmbeddedServer.stop) as make:
        yield make


@pytest.fixture
def server(server_factory) -> EmbeddedServer:
    return server_factory()


@pytest.fixture
def connect(server):
    clients: list[RawClient] = []

    def make(name: str | None = None, port: int | None = None) -> RawClient:
        client = RawClient(port or server.port)
        clients.append(client)
        if name is not None:
            assert client.login(name) == f"HELLO {name}".encode()
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def serve_process(tmp_path):
    """``chatsh serve --port 0`` from the console script; yields its port. Every client
    of a test comes from 127.0.0.1: it may have all 64 users."""
    proc = subprocess.Popen([CHATSH, "serve", "--port", "0", "--max-clients-per-address", "64"],
                            cwd=tmp_path,
                            stderr=subprocess.PIPE, env=chatsh_env())
    try:
        first = proc.stderr.readline().decode()
        assert "listening on 127.0.0.1:" in first, first
        yield int(first.split("127.0.0.1:")[1].split()[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def engine(tmp_path):
    """A real valkey-server on a free loopback port (see tests/cluster.py)."""
    from cluster import Engine

    engine = Engine(tmp_path).start()
    yield engine
    engine.kill()


@pytest.fixture
def nodes(engine):
    """Start cluster nodes on the engine: ``nodes(3)``; every one stopped by its id
    afterwards (see tests/cluster.py)."""
    from cluster import Nodes

    started = Nodes(engine)
    yield started
    started.stop()


def chatsh_env(**extra: str) -> dict[str, str]:
    """The environment for a chatsh child: no CHATSH_* defaults, no cwd on sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSH_")}
    env.update({"PROMPT_TOOLKIT_NO_CPR": "1", "PYTHONSAFEPATH": "1", **extra})
    return env


@pytest.fixture
def term_factory():
    """Makes chatsh in a pseudo-terminal (tests/terminal.py); each is closed after the test."""
    from terminal import Terminal

    with made_by(Terminal, Terminal.close) as make:
        yield make


@pytest.fixture
def bob(connect):
    """A raw client logged in as bob on the ``server`` fixture."""
    return connect("bob")


@pytest.fixture
def scripted():
    """A server the test drives by hand (tests/terminal.py)."""
    from terminal import ScriptedServer

    server = ScriptedServer()
    yield server
    server.close()
