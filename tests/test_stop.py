"""Graceful stop: on SIGTERM the server accepts no more, answers what it read, writes what
is queued (within --drain-timeout), gives back its names at once and exits 0."""

from __future__ import annotations

import collections
import contextlib
import signal
import socket
import threading
import time

from certificates import make_certificates
from cluster import Node, wait_for
from conftest import DEADLINE, RawClient
from served import Served
from test_metrics import get, metrics_port

from chatsh.framing import LineFramer

SENDERS, READERS = 4, 1
BODY = "x" * 1000


class Talker:
    """A user that either sends numbered messages to the readers as fast as the server
    takes them, or reads slowly (so that what the server queues for it piles up); both
    note what arrives: which messages were acknowledged (SEND-OK, in the order sent) and
    which reached them."""

    def __init__(self, port: int, name: str, sends: bool) -> None:
        self.name = name
        self.sends = sends
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.sendall(f"HELLO-FROM {name}\n".encode())
        self.waiting: collections.deque[tuple[str, str]] = collections.deque()
        """Messages sent and not answered yet, oldest first."""
        self.acknowledged: list[tuple[str, str]] = []
        """(recipient, body) of every SEND-OK."""
        self.received: set[str] = set()
        self.logged_in = threading.Event()
        self.hurry = threading.Event()
        """A slow reader reads at full speed from then on."""
        self.stopped = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)

    def start(self) -> None:
        self.reader.start()
        assert self.logged_in.wait(DEADLINE)
        if self.sends:
            self.writer.start()

    def _write(self) -> None:
        sent = 0
        try:
            while not self.stopped.is_set():
                batch = []
                for _ in range(50):
                    message = (f"r{sent % READERS}", f"{self.name}-{sent}-{BODY}")
                    self.waiting.append(message)
                    batch.append("SEND {} {}\n".format(*message))
                    sent += 1
                data = memoryview("".join(batch).encode())
                while data:
                    data = data[self.sock.send(data):]
                time.sleep(0.001)
        except OSError:
            pass  # the server stopped reading or closed

    def _read(self) -> None:
        framer = LineFramer()
        try:
            while chunk := self.sock.recv(1 << 16):
                for line in framer.feed(chunk):
                    self._take(bytes(line).decode())
                if not self.sends and self.logged_in.is_set() and not self.hurry.is_set():
                    time.sleep(0.05)
        except OSError:
            pass
        self.stopped.set()
        with contextlib.suppress(OSError):  # (a sender the server reset: not connected)
            self.sock.shutdown(socket.SHUT_RDWR)  # at the server's end, as a client does

    def _take(self, line: str) -> None:
        if line.startswith("HELLO "):
            self.logged_in.set()
        elif line.startswith("DELIVERY "):
            self.received.add(line.split(" ", 2)[2])
        elif line == "SEND-OK":
            self.acknowledged.append(self.waiting.popleft())
        elif line == "BAD-DEST-USER":
            self.waiting.popleft()

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


def test_sigterm_during_traffic_loses_no_acknowledged_message():
    """Senders flood a reader that reads slowly, so that megabytes of deliveries wait in
    the server's own queue (beyond what the kernel holds) when SIGTERM comes: each message
    a sender saw acknowledged reaches its reader, which then reads at full speed."""
    served = Served("--max-clients", str(SENDERS + READERS), "--max-clients-per-address",
                    str(SENDERS + READERS), "--drain-timeout", "15")
    talkers = [Talker(served.port, f"r{index}", sends=False) for index in range(READERS)]
    talkers += [Talker(served.port, f"s{index}", sends=True) for index in range(SENDERS)]
    try:
        for talker in talkers:
            talker.start()
        wait_for(lambda: sum(len(t.acknowledged) for t in talkers) > 20_000,
                 "traffic to flow", timeout=30)
        behind = sum(len(t.acknowledged) for t in talkers) - sum(
            len(t.received) for t in talkers)
        served.signal(signal.SIGTERM)
        for talker in talkers:
            talker.hurry.set()
        assert served.proc.wait(20) == 0
        for talker in talkers:
            talker.reader.join(DEADLINE)
            assert not talker.reader.is_alive()
    finally:
        for talker in talkers:
            talker.close()
        served.kill()
    assert behind * len(BODY) > 10 << 20  # waiting when the server was told to stop
    received = {talker.name: talker.received for talker in talkers}
    acknowledged = [(recipient, body) for talker in talkers
                    for recipient, body in talker.acknowledged]
    lost = [(recipient, body) for recipient, body in acknowledged
            if body not in received[recipient]]
    assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged messages lost"
    assert served.logged("shutting down") and served.logged("stopped")


def stuck_reader(port: int) -> RawClient:
    """A user that reads nothing, with more queued for it than the kernel's buffers hold
    (and less than the server's bound): its connection holds a drain open."""
    stuck = RawClient(port)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert stuck.login("stuck") == b"HELLO stuck"
    sender = RawClient(port)
    assert sender.login("sender") == b"HELLO sender"
    for _ in range(200):
        sender.write(b"SEND stuck " + b"x" * 1000 + b"\n")
        assert sender.read_line() == b"SEND-OK"
    return stuck


def test_a_draining_server_accepts_no_more_and_says_so_on_healthz():
    """A reader that does not read holds the drain open until --drain-timeout; meanwhile
    the port is closed and /healthz says 503 draining."""
    served = Served("--metrics", "127.0.0.1:0", "--drain-timeout", "2", "--max-line", "1024")
    try:
        port = metrics_port(served)
        stuck = stuck_reader(served.port)
        started = time.monotonic()
        served.signal(signal.SIGTERM)
        served.wait_logged("shutting down")
        assert get(port, "/healthz") == (503, "draining\n")
        try:
            socket.create_connection(("127.0.0.1", served.port), timeout=1).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        assert refused
        assert served.proc.wait(DEADLINE) == 0
        assert 1.5 < time.monotonic() - started < 6
        stuck.close()
    finally:
        served.kill()


def test_a_second_sigterm_stops_at_once():
    served = Served("--drain-timeout", "30", "--max-line", "1024")
    try:
        stuck = stuck_reader(served.port)
        served.signal(signal.SIGTERM)
        served.wait_logged("shutting down")
        started = time.monotonic()
        served.signal(signal.SIGTERM)
        assert served.proc.wait(DEADLINE) == 0
        assert time.monotonic() - started < 5
        stuck.close()
    finally:
        served.kill()


def test_a_stopping_node_gives_its_names_back_at_once(engine):
    """While node b drains (a reader that does not read holds it open), its user's name
    can log in on node a: b released it at the stop, not when its lease lapses."""
    here = Node(engine, "a", "--lease", "30")
    there = Node(engine, "b", "--lease", "30", "--drain-timeout", "20", "--max-line", "1024")
    try:
        stuck = stuck_reader(there.port)
        assert RawClient(here.port).login("stuck") == b"IN-USE"
        there.signal(signal.SIGTERM)
        there.wait_logged("shutting down")
        wait_for(lambda: RawClient(here.port).login("stuck") == b"HELLO stuck",
                 "the name to be free on the other node", timeout=5)
        assert there.proc.poll() is None  # still draining
        stuck.close()
    finally:
        there.kill()
        here.stop()


def test_idle_clients_that_stay_connected_do_not_hold_the_stop():
    """Once a client's side has acknowledged everything sent to it, its connection is
    done with, whether or not it closes its end."""
    served = Served("--drain-timeout", "30")
    try:
        idle = [RawClient(served.port) for _ in range(3)]
        for index, client in enumerate(idle):
            assert client.login(f"idle{index}") == b"HELLO idle" + str(index).encode()
        started = time.monotonic()
        served.signal(signal.SIGTERM)
        assert served.proc.wait(DEADLINE) == 0
        assert time.monotonic() - started < 3
        assert all(client.closed() for client in idle)
    finally:
        served.kill()


def test_connections_still_in_their_tls_handshake_do_not_hold_the_stop(tmp_path):
    """A connection to a TLS port that has not finished its handshake has nothing read to
    answer and nothing queued: one that stayed silent held every stop for the whole
    --drain-timeout (5 s by default)."""
    certs = make_certificates(tmp_path / "pki")
    served = Served("--drain-timeout", "30", "--tls-cert", str(certs.cert_file),
                    "--tls-key", str(certs.key_file))
    try:
        silent = RawClient(served.port)
        halfway = RawClient(served.port)
        halfway.write(b"\x16\x03\x01\x02\x00\x01")  # the start of a client hello
        served.wait_logged(f"connection from 127.0.0.1:{halfway.sock.getsockname()[1]}")
        started = time.monotonic()
        served.signal(signal.SIGTERM)
        assert served.proc.wait(DEADLINE) == 0
        assert time.monotonic() - started < 3
        assert silent.closed() and halfway.closed()
        assert not served.logged("TLS handshake failed") and not served.logged("Traceback")
    finally:
        served.kill()
