"""How `chatsh serve` paces what flows through it, on either event loop: a sender that
does not read its replies is held back (its connection kept), and a peer that ends its
side gets every answer first."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import DEADLINE
from served import Served

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    not __import__("importlib").util.find_spec("uvloop"), reason="uvloop is not installed"))]
MAX_LINE = 1_000_000
"""Small, so that a connection's queue bound (two lines and 1 MiB: 3 MiB) is near, and
over what asyncio reads before the connection's reading pauses (1 MiB queued, and a
read of 256 KiB)."""
BODY = b"y" * 1000


def served(loop: str) -> Served:
    return Served("--max-line", str(MAX_LINE), CHATSH_EVENT_LOOP=loop)


def logged_in(port: int, name: str, buffer: int | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    if buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    sock.sendall(f"HELLO-FROM {name}\n".encode())
    assert sock.recv(100) == f"HELLO {name}\n".encode()
    return sock


def read_until_closed_or(sock: socket.socket, size: int) -> int:
    got = 0
    while got < size:
        data = sock.recv(1 << 20)
        if not data:
            break
        got += len(data)
    return got


@pytest.mark.parametrize("loop", LOOPS)
def test_a_sender_that_does_not_read_is_held_back_not_dropped(loop):
    """uvloop reads up to 32 chunks of 256 KiB from a socket in one turn of its loop:
    their replies, written at the end of the turn, passed the connection's bound before
    its reading could pause, and a client that pipelined faster than it read was reset."""
    server = served(loop)
    try:
        deaf = logged_in(server.port, "deaf")
        deaf.settimeout(1.0)
        sent, batch = 0, (b"SEND echobot " + BODY + b"\n") * 64
        try:
            while sent < 40 * 1024 * 1024:  # until the server stops reading
                sent += deaf.send(batch)
        except TimeoutError:
            pass
        deaf.settimeout(DEADLINE)
        expected = sent // len(batch) * 64 * (len(b"SEND-OK\nDELIVERY echobot \n") + len(BODY))
        assert read_until_closed_or(deaf, expected) >= expected  # every reply, no reset
    finally:
        assert server.stop() == 0
    assert not server.logged("dropped deaf")


@pytest.mark.parametrize("loop", LOOPS)
def test_a_peer_that_ends_its_side_gets_every_answer_first(loop):
    server = served(loop)
    try:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        client.sendall(b"HELLO-FROM half\nSEND echobot one\nLIST\nSEND echobot two\n")
        client.shutdown(socket.SHUT_WR)
        received = b""
        deadline = time.monotonic() + DEADLINE
        while data := client.recv(1 << 16):
            received += data
            assert time.monotonic() < deadline
        assert received == (b"HELLO half\nSEND-OK\nDELIVERY echobot one\n"
                            b"LIST-OK echobot,half\nSEND-OK\nDELIVERY echobot two\n")
    finally:
        assert server.stop() == 0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


@pytest.mark.parametrize("loop", LOOPS)
def test_an_idle_logged_in_connection_costs_the_server_little_memory(loop):
    """A task, a stream reader and a writer for each connection made an idle logged-in
    user cost the server 6.6 KiB (a C relay: 0.55); a protocol object and its transport
    cost 2.5 on asyncio's loop, 2.2 on uvloop's."""
    import resource

    idle = 3000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < idle + 100:
        pytest.skip(f"{soft} file descriptors are too few for {idle} connections")
    server = Served("--max-clients", str(idle + 10), "--max-clients-per-address",
                    str(idle + 10), CHATSH_EVENT_LOOP=loop)
    users = []
    try:
        users.append(logged_in(server.port, "first"))
        before = rss_kib(server.proc.pid)
        for index in range(idle):
            users.append(logged_in(server.port, f"idle{index}"))
        per_connection = (rss_kib(server.proc.pid) - before) / idle
        assert per_connection <= 3.0, f"{per_connection:.2f} KiB an idle connection"
    finally:
        for user in users:
            user.close()
        assert server.stop() == 0


def peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))


@pytest.mark.parametrize("loop", LOOPS)
def test_a_list_flood_from_a_client_that_never_reads_stays_within_its_bound(loop):
    """A read of 52,000 LISTs with 64 users of 64-character names online was answered
    whole before any bound was looked at: about 214 MB of replies, the server past 430 MiB
    with four such clients against a total bound of 256 MiB. Now a read's lines are
    answered until the connection's output passes the point where reading pauses, the
    rest kept until it drains: the flooder gets every reply, and the server little."""
    server = Served("--max-clients", "80", "--max-clients-per-address", "80",
                    CHATSH_EVENT_LOOP=loop)
    users = []
    try:
        users = [logged_in(server.port, f"{index:02d}" + "u" * 62) for index in range(64)]
        deaf = logged_in(server.port, "deaf")
        listing = len(b"LIST-OK echobot,deaf\n") + 64 * 65
        before = peak_kib(server.proc.pid)
        deaf.settimeout(1.0)
        flood, sent = b"LIST\n" * 52_000, 0
        try:
            while sent < len(flood):
                sent += deaf.send(flood[sent:])
        except TimeoutError:
            pass
        probe = users[0]
        probe.sendall(b"LIST\n")  # the server is past what came before it
        assert probe.recv(1 << 16).startswith(b"LIST-OK ")
        grown_mib = (peak_kib(server.proc.pid) - before) / 1024
        deaf.settimeout(DEADLINE)
        expected = sent // 5 * listing
        assert read_until_closed_or(deaf, expected) >= expected  # every reply, no drop
        grown_mib = max(grown_mib, (peak_kib(server.proc.pid) - before) / 1024)
        assert grown_mib < 32, f"the server grew {grown_mib:.0f} MiB"
    finally:
        for user in users:
            user.close()
        assert server.stop() == 0
    assert not server.logged("dropped deaf")


@pytest.mark.parametrize("loop", LOOPS)
def test_lines_kept_for_a_list_flood_are_answered_in_order_and_before_an_end(loop):
    """The lines left unanswered while the output drains keep their place, and a peer
    that ends its side after them still gets every answer."""
    server = served(loop)
    try:
        client = logged_in(server.port, "many")
        request = b"".join(b"LIST\n" * 1000 + b"SEND echobot %d\n" % index
                           for index in range(100))
        client.sendall(request)
        client.shutdown(socket.SHUT_WR)
        received = bytearray()
        deadline = time.monotonic() + DEADLINE
        while data := client.recv(1 << 20):
            received += data
            assert time.monotonic() < deadline
        assert bytes(received) == b"".join(
            b"LIST-OK echobot,many\n" * 1000 + b"SEND-OK\nDELIVERY echobot %d\n" % index
            for index in range(100))
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_memory_queued_for_slow_readers_goes_back_to_the_system_when_they_leave(loop):
    """uvloop holds a queue as the messages themselves (60 KB each here), which the C
    allocator keeps once freed: 80 MiB queued for two readers that never read and then
    left stayed in the server (250 MiB after bench/server_abuse.py's abusers, 31 MiB on
    asyncio's loop, which queues into one buffer)."""
    server = Served("--max-line", str(64 << 20), CHATSH_EVENT_LOOP=loop)
    try:
        sleepers = [logged_in(server.port, f"sleeper{index}", buffer=4096) for index in range(2)]
        feeder = logged_in(server.port, "feeder")
        before = rss_kib(server.proc.pid)
        body = b"z" * 60_000
        idle = []
        for round_ in range(700):
            for index in range(2):
                feeder.sendall(b"SEND sleeper%d " % index + body + b"\n")
            if round_ % 20 == 0:  # what stays, in among what goes
                idle.append(logged_in(server.port, f"idle{round_}"))
        replies = b""
        while replies.count(b"\n") < 1400:
            replies += feeder.recv(1 << 16)
        assert replies == b"SEND-OK\n" * 1400
        held_mib = (rss_kib(server.proc.pid) - before) / 1024
        assert held_mib > 60, f"only {held_mib:.0f} MiB queued"
        for sleeper in sleepers:
            sleeper.close()
        deadline = time.monotonic() + DEADLINE
        while (left_mib := (rss_kib(server.proc.pid) - before) / 1024) > 16:
            assert time.monotonic() < deadline, f"{left_mib:.0f} MiB kept after they left"
            time.sleep(0.05)
        for user in [feeder, *idle]:
            user.close()
    finally:
        assert server.stop() == 0
