"""The server's bounds on a connection that has not logged in: its deadline covers every
wait, over real sockets on 127.0.0.1."""

import asyncio
import socket
import struct
import time

import pytest
from conftest import DEADLINE, RawClient
from served import Served

from chatsh.backplane import Claim, LocalBackplane
from chatsh.embedded import EmbeddedServer
from chatsh.server import ServerConfig

TCP_ESTABLISHED = 1


def still_connected(sock: socket.socket) -> bool:
    """Whether the server has sent neither FIN nor RST, seen without reading a byte (the
    kernel's TCP state of our end)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return struct.unpack("B", info[:1])[0] == TCP_ESTABLISHED


def wait_for_close(client: RawClient, within: float) -> float:
    """Seconds until the server ends ``client``'s connection, which never reads; fails
    after ``within``."""
    start = time.monotonic()
    while still_connected(client.sock):
        assert time.monotonic() - start < within, "the connection outlived its deadline"
        time.sleep(0.01)
    return time.monotonic() - start


def flood(client: RawClient, data: bytes, seconds: float) -> int:
    """Write as much of ``data`` as the server takes within ``seconds``; bytes written."""
    client.sock.settimeout(seconds)
    sent = 0
    try:
        while sent < len(data):
            sent += client.sock.send(data[sent:sent + 65536])
    except OSError:  # TimeoutError once the server stops reading, or a reset
        pass
    return sent


needs_tcp_info = pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="needs TCP_INFO")


@needs_tcp_info
def test_refusals_a_client_never_reads_do_not_outlive_the_login_deadline(server_factory):
    """Before: the server waited in drain() for the refusals to be read, outside the
    deadline, and the connection stayed open holding over a mebibyte of replies."""
    server = server_factory(handshake_timeout=1.0, max_refusals=10**9)
    attacker = RawClient(server.port)
    attacker.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood(attacker, b"HELLO-FROM a!b\n" * 300_000, seconds=0.5)
    wait_for_close(attacker, within=DEADLINE)  # 1 s deadline; room for a loaded machine


class HangingClaims(LocalBackplane):
    """A backplane whose engine never answers a claim."""

    async def claim(self, name: str) -> Claim:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@needs_tcp_info
def test_a_claim_that_never_returns_counts_against_the_login_deadline():
    server = EmbeddedServer(ServerConfig(handshake_timeout=0.5),
                            backplane=HangingClaims()).start()
    try:
        client = RawClient(server.port)
        client.write(b"HELLO-FROM patient\n")
        wait_for_close(client, within=DEADLINE / 2)
        assert client.closed()
    finally:
        server.stop()


def logged(server: EmbeddedServer) -> list[str]:
    """The server's log lines from now on."""
    lines: list[str] = []
    server._server.log = lines.append
    return lines


def peer(client: RawClient) -> str:
    host, port = client.sock.getsockname()[:2]
    return f"{host}:{port}"


def wait_until_no_connections(server: EmbeddedServer) -> None:
    deadline = time.monotonic() + DEADLINE
    while server._server._sessions:
        assert time.monotonic() < deadline, server._server._sessions
        time.sleep(0.01)


def test_a_connection_refused_max_refusals_times_is_closed(server_factory):
    server = server_factory(max_refusals=3)
    log = logged(server)
    client = RawClient(server.port)
    assert [client.login(name) for name in ("echobot", "a!b", "Echobot")] == [
        b"IN-USE", b"BAD-RQST-BODY", b"IN-USE"]
    assert client.closed()
    assert f"closed {peer(client)}: 3 refused logins" in log


def test_a_person_trying_names_still_logs_in_after_refusals(server_factory):
    server = server_factory()
    holder = RawClient(server.port)
    assert holder.login("alice") == b"HELLO alice"
    client = RawClient(server.port)
    tries = ["alice", "Alice", "ALICE", "alice!", "al ice", "echobot", "Аlice"]  # Cyrillic А
    assert [client.login(name) for name in tries] == [
        b"IN-USE", b"IN-USE", b"IN-USE", b"BAD-RQST-BODY", b"BAD-RQST-BODY", b"IN-USE",
        b"IN-USE"]
    assert client.login("alice2") == b"HELLO alice2"
    client.write(b"HELLO-FROM again\nLIST\n")  # after login: a bad header, not a refusal
    assert [client.read_line(), client.read_line()] == [
        b"BAD-RQST-HDR", b"LIST-OK echobot,alice,alice2"]


def test_a_hundred_thousand_refused_logins_on_one_connection_are_a_few_log_lines(
        server_factory):
    """Before: 100,000 HELLO-FROM echobot gave 100,002 log lines (6.4 MB)."""
    server = server_factory()
    log = logged(server)
    attacker = RawClient(server.port)
    flood(attacker, b"HELLO-FROM echobot\n" * 100_000, seconds=2)
    replies = []
    try:
        while (line := attacker.read_line()) is not None:
            replies.append(line)
    except ConnectionResetError:  # the close found requests it never read
        pass
    assert set(replies) <= {b"IN-USE"} and len(replies) <= 8
    wait_until_no_connections(server)
    assert sum(line.startswith("refused echobot") for line in log) == 8
    assert len(log) == 11, log  # connection from, 8 refused, closed after them, closed


def client_from(address: str, port: int) -> RawClient:
    return RawClient(port, source=address)


def test_one_address_writes_a_bounded_log_and_others_are_logged_in_full(server_factory):
    server = server_factory(log_burst=10, log_window=60)
    log = logged(server)
    for _ in range(30):  # 3 lines each: connection from, refused, connection closed
        flooder = client_from("127.0.0.5", server.port)
        assert flooder.login("echobot") == b"IN-USE"
        flooder.close()
    wait_until_no_connections(server)
    assert len(log) == 10
    other = client_from("127.0.0.6", server.port)
    assert other.login("echobot") == b"IN-USE"
    assert other.login("bee") == b"HELLO bee"
    ant = client_from("127.0.0.5", server.port)
    assert ant.login("ant") == b"HELLO ant"
    assert log[10:] == [f"connection from {peer(other)}", f"refused echobot from {peer(other)}: "
                        "name in use", f"bee logged in ({peer(other)})",
                        f"ant logged in ({peer(ant)})"]
    ant.close()
    other.close()
    wait_until_no_connections(server)
    server.stop()
    assert log[-1] == "127.0.0.5: 82 more lines about this address left out (over 10 in 60 s)"


def test_logins_in_a_loop_from_one_address_write_a_bounded_log(server_factory):
    """Logins and logouts went around the bound: a client logging in and out in a loop
    wrote two lines a try, 4,000 a second. Each address now has a budget of logins in a
    window, each written with its logout; the rest are counted in one line."""
    server = server_factory(log_burst=2, log_window=60, login_log_burst=5)
    log = logged(server)
    for index in range(40):
        churner = client_from("127.0.0.5", server.port)
        assert churner.login(f"c{index}") == f"HELLO c{index}".encode()
        churner.close()
        wait_until_no_connections(server)
    logins = [line for line in log if " logged in " in line]
    logouts = [line for line in log if " logged out " in line]
    assert [line.split()[0] for line in logins] == [f"c{index}" for index in range(5)]
    assert [line.split()[0] for line in logouts] == [f"c{index}" for index in range(5)]
    other = client_from("127.0.0.6", server.port)
    assert other.login("bee") == b"HELLO bee"  # another address is logged in full
    assert f"bee logged in ({peer(other)})" in log
    other.close()
    wait_until_no_connections(server)
    server.stop()
    assert "127.0.0.5: 35 more logins about this address left out (over 5 in 60 s)" in log


@pytest.mark.parametrize("start", [b"HELLO-FROM ", b"SEND bob ", b""])
def test_an_unfinished_line_before_login_is_held_only_up_to_a_few_kib(server_factory, start):
    """Before: up to --max-line (64 MiB) was held for each of 256 connections waiting to
    log in, 16 GiB in all. A login line has at most 268 bytes."""
    server = server_factory()
    log = logged(server)
    client = RawClient(server.port)
    client.write(b"HELLO-FROM echobot\n" + start + b"a" * 300_000)  # and no newline
    assert [client.read_line(), client.read_line()] == [b"IN-USE", b"BAD-RQST-BODY"]
    assert client.closed()
    assert f"closed {peer(client)}: a line of over 4096 bytes before logging in" in log


def test_a_login_pipelined_with_a_long_message_still_works(server_factory):
    server = server_factory()
    client = RawClient(server.port)
    body = b"m" * 3_000_000
    client.write(b"HELLO-FROM long\nSEND echobot " + body + b"\n")
    assert client.read_line() == b"HELLO long"
    assert client.read_line() == b"SEND-OK"
    assert client.read_line() == b"DELIVERY echobot " + body


def test_the_server_keeps_its_connections_alive(server):
    """A client gone without a word (a laptop shut, a NAT that forgot the connection)
    held its name for good: every try of its owner to log in again got IN-USE. The
    kernel now probes a connection idle for a minute, and a dead one ends in about two."""
    client = RawClient(server.port)
    assert client.login("kept") == b"HELLO kept"
    [session] = [session for session in list(server._server._sessions)
                 if session.name == "kept"]
    sock = session.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 15
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
    client.close()


def test_one_address_cannot_take_every_users_place(server_factory):
    """One address logged in --max-clients names and nobody else could log in: an address
    gets --max-clients-per-address of them, then BUSY, and everyone else still gets in."""
    server = server_factory(max_clients=10, max_clients_per_address=2)
    log = logged(server)
    first, second = RawClient(server.port), RawClient(server.port)
    assert first.login("a1") == b"HELLO a1" and second.login("a2") == b"HELLO a2"
    third = RawClient(server.port)
    assert third.login("a3") == b"BUSY"
    assert third.closed()
    assert f"refused a3 from {peer(third)}: its address has its share of users " \
        "(--max-clients-per-address)" in log, log  # not 'server full': 2 of 10 are in
    other = RawClient(server.port, source="127.0.0.2")
    assert other.login("b1") == b"HELLO b1"
    assert server._server.stats.refusals["address_full"] == 1
    first.close()
    deadline = time.monotonic() + DEADLINE
    while (again := RawClient(server.port)).login("a3") != b"HELLO a3":  # its place is free
        assert time.monotonic() < deadline, "a1's place was never given back"
        again.close()
        time.sleep(0.02)


def test_a_full_server_says_so_even_when_the_address_has_its_share_too(server_factory):
    """Every place taken, by one address with its whole share: one more login from it is
    refused because the server is full, which is what the log says and counts."""
    server = server_factory(max_clients=2, max_clients_per_address=2)
    log = logged(server)
    users = [RawClient(server.port) for _ in range(3)]
    assert [user.login(f"u{index}") for index, user in enumerate(users)] == [
        b"HELLO u0", b"HELLO u1", b"BUSY"]
    assert f"refused u2 from {peer(users[2])}: server full" in log, log
    assert server._server.stats.refusals["address_full"] == 0


def test_a_refused_login_gives_its_address_share_back(server_factory, connect):
    server = server_factory(max_clients=10, max_clients_per_address=1)
    taken = RawClient(server.port, source="127.0.0.2")
    assert taken.login("bob") == b"HELLO bob"
    client = RawClient(server.port)
    for _ in range(3):
        assert client.login("bob") == b"IN-USE"
    assert client.login("carol") == b"HELLO carol"


def test_chatsh_serve_gives_one_address_three_quarters_of_the_places_loopback_too():
    served = Served()
    try:
        users = [RawClient(served.port) for _ in range(49)]
        assert [user.login(f"u{index}") for index, user in enumerate(users[:48])] == [
            f"HELLO u{index}".encode() for index in range(48)]
        assert users[48].login("u48") == b"BUSY"
        assert RawClient(served.port, source="127.0.0.2").login("other") == b"HELLO other"
    finally:
        assert served.stop() == 0


def test_chatsh_serve_takes_the_share_it_is_given():
    """--max-clients-per-address reaches the server (only a traffic test of SIGTERM noticed
    when it did not: every test of the share gave it in-process)."""
    served = Served("--max-clients-per-address", "1")
    try:
        first, second = RawClient(served.port), RawClient(served.port)
        assert first.login("one") == b"HELLO one"
        assert second.login("two") == b"BUSY"
    finally:
        assert served.stop() == 0


@pytest.mark.parametrize(("max_clients", "share"), [(1, 1), (2, 2), (4, 3), (64, 48),
                                                    (7000, 5250)])
def test_the_default_share_leaves_others_a_quarter(max_clients, share):
    assert ServerConfig(max_clients=max_clients).max_clients_per_address == share
    assert ServerConfig(max_clients=max_clients,
                        max_clients_per_address=5).max_clients_per_address == 5


def test_an_ipv6_address_has_its_share_too():
    server = EmbeddedServer(ServerConfig(max_clients=10, max_clients_per_address=1),
                            host="::1").start()
    try:
        def login(name: str) -> bytes:
            sock = socket.create_connection(("::1", server.port), timeout=DEADLINE)
            sockets.append(sock)
            sock.sendall(f"HELLO-FROM {name}\n".encode())
            return sock.makefile("rb").readline().rstrip(b"\n")

        sockets: list[socket.socket] = []
        assert login("v6a") == b"HELLO v6a"
        assert login("v6b") == b"BUSY"
        for sock in sockets:
            sock.close()
    finally:
        server.stop()


def test_peers_that_reset_before_they_are_served_leave_no_traceback():
    """On uvloop a connection reset before the server's first look at it has no peer
    address: 1,000 of them wrote 11,000 lines of tracebacks, past the log's bound of
    32 lines a minute about one address."""
    served = Served()
    try:
        for _ in range(200):
            client = socket.create_connection(("127.0.0.1", served.port))
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        user = RawClient(served.port)
        assert user.login("after") == b"HELLO after"
        served.wait_logged("after logged in")
        assert not [line for line in served.log if "Traceback" in line]
        assert len(served.log) < 50, served.log[-20:]
    finally:
        assert served.stop() == 0
