"""The server over real sockets on 127.0.0.1: every row of the protocol table."""

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
from conftest import CHATSH, DEADLINE, RawClient, chatsh_env

from chatsh.embedded import EmbeddedServer
from chatsh.server import ServerConfig


def test_login_and_list(connect):
    alice = connect("alice")
    bob = connect("bob")
    alice.write(b"LIST\n")
    names = alice.read_line().removeprefix(b"LIST-OK ").split(b",")
    assert sorted(names) == [b"alice", b"bob", b"echobot"]
    bob.close()


def test_name_in_use_then_another_name_on_the_same_connection(connect):
    """As the course's reference server does: clients that retry on the same socket work."""
    connect("alice")
    other = connect()
    assert other.login("alice") == b"IN-USE"
    assert other.login("echobot") == b"IN-USE"
    assert other.login("a!b") == b"BAD-RQST-BODY"
    assert other.login("bob") == b"HELLO bob"
    other.write(b"LIST\n")
    assert sorted(other.read_line().removeprefix(b"LIST-OK ").split(b",")) == [
        b"alice", b"bob", b"echobot"]


def test_refused_names_pipelined_in_one_write_are_each_answered(connect):
    connect("alice")
    other = connect()
    other.write(b"HELLO-FROM alice\nHELLO-FROM x y\nHELLO-FROM carol\nLIST\n")
    assert [other.read_line() for _ in range(4)] == [
        b"IN-USE", b"BAD-RQST-BODY", b"HELLO carol", b"LIST-OK echobot,alice,carol"]


def test_a_client_that_reconnects_after_in_use_works_too(connect):
    connect("alice")
    first = connect()
    assert first.login("alice") == b"IN-USE"
    first.close()
    assert connect().login("bob") == b"HELLO bob"


def test_close_on_refusal_closes_after_in_use_and_refused_names(server_factory):
    server = server_factory(close_on_refusal=True)
    holder = RawClient(server.port)
    assert holder.login("alice") == b"HELLO alice"
    taken, bad = RawClient(server.port), RawClient(server.port)
    assert taken.login("alice") == b"IN-USE"
    assert taken.closed()
    assert bad.login("a,b") == b"BAD-RQST-BODY"
    assert bad.closed()


@pytest.mark.parametrize("name", ["a!b", "a@b", "a#b", "a$b", "a%b", "a^b", "a&b", "a*b",
                                  "a,b", "a b", "a\x1bb"])
def test_disallowed_name(connect, name):
    client = connect()
    assert client.login(name) == b"BAD-RQST-BODY"
    assert not client.closed(timeout=0.3)
    assert client.login("fine") == b"HELLO fine"


def test_first_line_not_hello_from(connect):
    client = connect()
    client.write(b"LIST\n")
    assert client.read_line() == b"BAD-RQST-HDR"
    assert client.closed()


def test_busy_at_the_limit(server_factory):
    server = server_factory(max_clients=2)
    first, second, third = (RawClient(server.port) for _ in range(3))
    assert first.login("a") == b"HELLO a"
    assert second.login("b") == b"HELLO b"
    assert third.login("c") == b"BUSY"
    assert third.closed()
    taken_too = RawClient(server.port)
    assert taken_too.login("a") == b"BUSY"  # no point asking for another name
    first.close()
    deadline = time.monotonic() + 5
    while True:
        again = RawClient(server.port)
        reply = again.login("c")
        if reply == b"HELLO c" or time.monotonic() > deadline:
            break
    assert reply == b"HELLO c"


def test_send_and_delivery(connect):
    alice = connect("alice")
    bob = connect("bob")
    alice.write("SEND bob héllo there\n".encode())
    assert alice.read_line() == b"SEND-OK"
    assert bob.read_line() == "DELIVERY alice héllo there".encode()


def test_bad_destination(connect):
    alice = connect("alice")
    alice.write(b"SEND nobody hi\n")
    assert alice.read_line() == b"BAD-DEST-USER"


def test_echobot_and_self(connect):
    alice = connect("alice")
    alice.write(b"SEND echobot ping pong\nSEND alice me\n")
    assert [alice.read_line() for _ in range(4)] == [
        b"SEND-OK", b"DELIVERY echobot ping pong", b"SEND-OK", b"DELIVERY alice me"]


@pytest.mark.parametrize("line, reply", [
    (b"SEND bob\n", b"BAD-RQST-BODY"),
    (b"SEND\n", b"BAD-RQST-BODY"),
    (b"LIST now\n", b"BAD-RQST-BODY"),
    (b"SEND echobot a\rb\n", b"BAD-RQST-BODY"),
    (b"SHOUT hi\n", b"BAD-RQST-HDR"),
    (b"HELLO-FROM again\n", b"BAD-RQST-HDR"),
    (b"\n", b"BAD-RQST-HDR"),
])
def test_bad_requests_after_login_keep_the_session(connect, line, reply):
    alice = connect("alice")
    alice.write(line)
    assert alice.read_line() == reply
    alice.write(b"SEND echobot still here\n")
    assert alice.read_line() == b"SEND-OK"


def test_requests_split_across_many_writes(connect):
    alice = connect()
    for byte in b"HELLO-FROM alice\nSEND echobot h\xc3\xa9\nLIST\n":
        alice.write(bytes([byte]))
    assert alice.read_line() == b"HELLO alice"
    assert alice.read_line() == b"SEND-OK"
    assert alice.read_line() == "DELIVERY echobot hé".encode()
    assert alice.read_line() == b"LIST-OK echobot,alice"


def test_four_mib_through_echobot(connect):
    alice = connect("alice")
    body = (b"0123456789abcdef" * 65536 * 4)[: 4 * 1024 * 1024]
    alice.write(b"SEND echobot " + body + b"\n")
    assert alice.read_line() == b"SEND-OK"
    assert alice.read_line() == b"DELIVERY echobot " + body


def test_abrupt_disconnect_mid_line_frees_the_name(connect):
    alice = connect("alice")
    alice.write(b"SEND echobot half a li")
    alice.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    alice.close()
    bob = connect("bob")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        bob.write(b"LIST\n")
        if bob.read_line() == b"LIST-OK echobot,bob":
            break
    else:
        pytest.fail("alice was not removed")
    assert connect().login("alice") == b"HELLO alice"


def test_line_over_the_cap(server_factory):
    server = server_factory(max_line=1024)
    alice = RawClient(server.port)
    assert alice.login("alice") == b"HELLO alice"
    alice.write(b"SEND echobot " + b"x" * 5000)
    assert alice.read_line() == b"BAD-RQST-BODY"
    alice.write(b"x" * 5000 + b"\nSEND echobot fine\n")
    assert alice.read_line() == b"SEND-OK"
    assert alice.read_line() == b"DELIVERY echobot fine"


def test_reader_that_never_reads_is_dropped_and_others_go_on(server_factory):
    server = server_factory(max_line=64 * 1024, max_queue=256 * 1024)
    log: list[str] = []
    server._server.log = log.append
    sleeper = RawClient(server.port)
    sleeper.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert sleeper.login("sleeper") == b"HELLO sleeper"
    alice = RawClient(server.port)
    assert alice.login("alice") == b"HELLO alice"
    body = b"z" * 60000
    replies = []
    for _ in range(400):
        alice.write(b"SEND sleeper " + body + b"\n")
        replies.append(alice.read_line())
    assert replies[0] == b"SEND-OK"
    assert b"BAD-DEST-USER" in replies, "the sleeper was never disconnected"
    assert "dropped sleeper: output queue over 262144 bytes" in log
    alice.write(b"SEND echobot alive\n")
    assert alice.read_line() == b"SEND-OK"
    assert alice.read_line() == b"DELIVERY echobot alive"


def test_many_clients_at_once(connect):
    clients = [connect(f"user{i}") for i in range(30)]
    for i, client in enumerate(clients):
        client.write(f"SEND user{(i + 1) % 30} from {i}\n".encode())
    got = set()
    for client in clients:
        lines = {client.read_line(), client.read_line()}
        assert b"SEND-OK" in lines
        got |= lines - {b"SEND-OK"}
    assert got == {f"DELIVERY user{i} from {i}".encode() for i in range(30)}


def test_embedded_server_stops():
    server = EmbeddedServer(ServerConfig()).start()
    port = server.port
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_slow_sender_holds_nobody_up(connect):
    """Alice is answered while another client is still half-way through a line."""
    slow = connect()
    stop = threading.Event()
    finished = threading.Event()

    def dribble():
        for byte in b"HELLO-FROM " + b"s" * 1000:
            if stop.wait(0.01):
                return
            slow.write(bytes([byte]))
        finished.set()

    thread = threading.Thread(target=dribble)
    thread.start()
    try:
        alice = connect("alice")
        alice.write(b"SEND echobot quick\n")
        assert alice.read_line() == b"SEND-OK"
        assert not finished.is_set(), "the slow line ended before alice was answered"
    finally:
        stop.set()
        thread.join()


def test_chatsh_serve_process_logs_and_stops_on_sigterm():

    proc = subprocess.Popen([CHATSH, "serve", "--port", "0"],
                            stderr=subprocess.PIPE, env=chatsh_env())
    try:
        first = proc.stderr.readline().decode()
        assert "listening on 127.0.0.1:" in first
        port = int(first.split("127.0.0.1:")[1].split()[0])
        client = RawClient(port)
        assert client.login("\x1b[31mred") == b"BAD-RQST-BODY"
        client = RawClient(port)
        assert client.login("alice") == b"HELLO alice"
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        log = first + proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "alice logged in" in log
    assert "alice logged out" in log
    assert "refused '^[[31mred'" in log
    assert "\x1b" not in log
    assert "shutting down" in log


def test_garbage_before_hello_and_many_dropped_connections(connect):
    for _ in range(200):
        raw = connect()
        raw.write(b"\x00\xff garbage")
        raw.close()
    client = connect()
    client.write(b"\xff\xfe\n")
    assert client.read_line() == b"BAD-RQST-HDR"
    assert client.closed()
    assert connect().login("survivor") == b"HELLO survivor"


def _rss_kib() -> int:
    from pathlib import Path
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_huge_line_without_newline_keeps_memory_bounded(server_factory):
    """200 MiB with no newline against a 1 MiB cap: memory stays flat, others are served."""
    server = server_factory(max_line=1024 * 1024)
    hog = RawClient(server.port)
    assert hog.login("hog") == b"HELLO hog"
    other = RawClient(server.port)
    assert other.login("other") == b"HELLO other"
    before = _rss_kib()
    chunk = b"h" * (1024 * 1024)
    hog.write(b"SEND echobot ")
    for _ in range(200):
        hog.write(chunk)
    assert hog.read_line() == b"BAD-RQST-BODY"
    grown_mib = (_rss_kib() - before) / 1024
    assert grown_mib < 50, f"the server held {grown_mib:.0f} MiB for a capped line"
    other.write(b"SEND echobot fine\n")
    assert other.read_line() == b"SEND-OK"
    hog.write(b"\nSEND echobot back to normal\n")
    assert hog.read_line() == b"SEND-OK"


def test_silent_connection_is_closed_at_the_handshake_deadline(server_factory):
    server = server_factory(handshake_timeout=0.3)
    silent = RawClient(server.port)
    user = RawClient(server.port)
    assert user.login("stays") == b"HELLO stays"
    assert silent.closed(timeout=5)
    assert not user.closed(timeout=0.6)  # logged in: no deadline
    user.write(b"LIST\n")
    assert user.read_line() == b"LIST-OK echobot,stays"


@pytest.mark.parametrize("taken, look_alike", [
    ("bob", "BOB"), ("bob", "Ｂｏｂ"), ("echobot", "\u0435chobot"), ("echobot", "Echobot"),
])
def test_a_look_alike_of_a_logged_in_name_is_in_use(connect, taken, look_alike):
    first = connect(taken) if taken != "echobot" else None
    assert connect().login(look_alike) == b"IN-USE"
    if first is not None:  # once the first leaves, the look-alike may log in
        first.close()
        deadline = time.monotonic() + DEADLINE
        while (reply := connect().login(look_alike)) == b"IN-USE":
            assert time.monotonic() < deadline, "the name was never freed"
        assert reply == f"HELLO {look_alike}".encode()


def test_refused_names_are_logged_short_and_escaped(server_factory):
    lines: list[str] = []
    server = server_factory()
    server._server.log = lines.append
    for name in (b"a" * 4000, b"b!" * 2000, b"\x1b[31m" * 800, "z\u200b".encode() * 9):
        client = RawClient(server.port)
        assert client.login(name.decode("utf-8")) == b"BAD-RQST-BODY"
        client.close()
    refused = [line for line in lines if line.startswith("refused")]
    assert len(refused) == 4
    assert max(map(len, lines)) < 300
    assert not any("\x1b" in line or "\u200b" in line for line in lines)


def test_the_log_tells_each_connection_event(server_factory):
    server = server_factory(max_clients=2)
    log: list[str] = []
    server._server.log = log.append

    def peer(client):
        host, port = client.sock.getsockname()[:2]
        return f"{host}:{port}"

    alice, bob = RawClient(server.port), RawClient(server.port)
    assert alice.login("alice") == b"HELLO alice"
    taken, full, bad = (RawClient(server.port) for _ in range(3))
    assert taken.login("alice") == b"IN-USE"
    assert bob.login("bob") == b"HELLO bob"
    assert full.login("carol") == b"BUSY"
    assert bad.login("x!y") == b"BAD-RQST-BODY"
    at = peer(alice)
    alice.close()
    expected = [
        f"connection from {at}", f"alice logged in ({at})",
        f"refused alice from {peer(taken)}: name in use",
        f"refused carol from {peer(full)}: server full",
        f"refused 'x!y' from {peer(bad)}: disallowed name",
        f"alice logged out ({at})", f"connection closed {at}",
    ]
    deadline = time.monotonic() + DEADLINE
    while not set(expected) <= set(log):
        assert time.monotonic() < deadline, f"missing {set(expected) - set(log)} in {log}"
        time.sleep(0.01)
    assert full.closed()
    for client in (taken, bad):
        assert not client.closed(timeout=0.3)


def test_default_queue_bound_is_two_lines_and_a_mebibyte():
    assert ServerConfig(max_line=1000).max_queue == 2 * 1000 + 1024 * 1024
    assert ServerConfig(max_line=1000, max_queue=5).max_queue == 5


def test_the_server_listens_where_it_is_told():
    server = EmbeddedServer(host="127.0.0.1", port=0).start()
    try:
        assert server.port > 0
        socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE).close()
    finally:
        server.stop()


def client_from(address: str, port: int) -> RawClient:
    return RawClient(port, source=address)


def test_silent_connections_from_one_address_are_bounded(server_factory):
    server = server_factory(max_pending_per_address=3, max_pending=100, pending_grace=0)
    silent = [client_from("127.0.0.5", server.port) for _ in range(3)]
    newest = client_from("127.0.0.5", server.port)
    assert silent[0].closed(timeout=5)
    assert newest.login("newest") == b"HELLO newest"
    assert client_from("127.0.0.6", server.port).login("visitor") == b"HELLO visitor"
    assert not silent[1].closed(timeout=0.3)


def test_a_flood_of_silent_connections_pushes_out_the_oldest(server_factory):
    server = server_factory(max_pending=4, max_pending_per_address=100, pending_grace=0)
    log: list[str] = []
    server._server.log = log.append
    flood = [client_from(f"127.0.1.{index}", server.port) for index in range(1, 5)]
    oldest = f"127.0.1.1:{flood[0].sock.getsockname()[1]}"
    user = client_from("127.0.2.1", server.port)
    assert flood[0].closed(timeout=5)
    assert user.login("real") == b"HELLO real"
    assert not flood[3].closed(timeout=0.3)
    assert f"closed {oldest}: the oldest of too many connections waiting to log in" in log


def test_logged_in_users_leave_the_waiting_count(server_factory):
    server = server_factory(max_pending_per_address=2, pending_grace=0)
    users = []
    for index in range(4):  # one at a time: each logs in before the next connects
        users.append(RawClient(server.port))
        assert users[-1].login(f"u{index}") == f"HELLO u{index}".encode()
    for user in users:  # none was pushed out as if still waiting to log in
        user.write(b"LIST\n")
        assert user.read_line().startswith(b"LIST-OK")
    for user in users:
        user.close()
    gate, sessions = server._server.pending, server._server._sessions
    deadline = time.monotonic() + DEADLINE
    while len(gate) or sessions:
        assert time.monotonic() < deadline, (len(gate), sessions)
        time.sleep(0.01)


def test_a_bare_hello_from_is_a_bad_body(connect):
    client = connect()
    client.write(b"HELLO-FROM\r\n")
    assert client.read_line() == b"BAD-RQST-BODY"
    other = connect()
    other.write(b"HELLO-FROMX bob\n")
    assert other.read_line() == b"BAD-RQST-HDR"


def test_connections_that_leave_before_logging_in_leave_the_waiting_count(server_factory):
    server = server_factory()
    silent = [RawClient(server.port) for _ in range(5)]
    gate = server._server.pending
    deadline = time.monotonic() + DEADLINE
    while len(gate) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for client in silent:
        client.close()
    while len(gate):
        assert time.monotonic() < deadline, len(gate)
        time.sleep(0.01)


def test_a_server_on_a_chosen_port_with_its_own_accept_error_handler():
    import asyncio

    from chatsh.server import ChatServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        chosen = probe.getsockname()[1]

    async def check():
        server = ChatServer(log=lambda message: None)
        await server.start("127.0.0.1", chosen)
        try:
            assert server.port == chosen
            loop = asyncio.get_running_loop()
            assert loop.get_exception_handler() == server._quiet_accept_errors
        finally:
            await server.stop()

    asyncio.run(check())


def test_one_read_can_deliver_to_several_users(connect):
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    alice.write(b"SEND bob for bob\nSEND carol for carol\n")
    assert alice.read_line() == b"SEND-OK"
    assert alice.read_line() == b"SEND-OK"
    assert bob.read_line() == b"DELIVERY alice for bob"
    assert carol.read_line() == b"DELIVERY alice for carol"


def test_running_out_of_descriptors_is_logged_once_a_minute():
    import errno

    from chatsh.server import ACCEPT_WARNING_INTERVAL, ChatServer

    log: list[str] = []
    server = ChatServer(log=log.append)

    class Loop:
        now = 1000.0
        other: list[dict] = []

        def time(self):
            return self.now

        def default_exception_handler(self, context):
            self.other.append(context)

    loop = Loop()
    full = {"message": "socket.accept() out of system resource",
            "exception": OSError(errno.EMFILE, "Too many open files")}
    server._quiet_accept_errors(loop, full)
    server._quiet_accept_errors(loop, full)
    loop.now += ACCEPT_WARNING_INTERVAL
    server._quiet_accept_errors(loop, {"exception": OSError(errno.ENFILE, "Too many")})
    assert log == ["cannot accept connections for now (Too many open files); accepting "
                   "again as connections close",
                   "cannot accept connections for now (Too many); accepting again as "
                   "connections close"]
    other = {"message": "something else", "exception": ValueError("x")}
    server._quiet_accept_errors(loop, other)
    server._quiet_accept_errors(loop, {"exception": OSError(errno.EPIPE, "pipe")})
    assert loop.other == [other, {"exception": loop.other[1]["exception"]}]
    assert len(log) == 2


def test_log_lines_go_to_stderr_with_a_prefix(capsys):
    from chatsh.serverlog import log_to_stderr

    log_to_stderr("hello there")
    assert capsys.readouterr().err == "chatsh serve: hello there\n"



def test_slow_readers_together_are_bounded_slowest_first(server_factory):
    server = server_factory(max_line=64 * 1024, max_queue=64 << 20, max_total_queue=3 << 20)
    log: list[str] = []
    server._server.log = log.append
    sleepers = []
    for index in range(3):
        sleeper = RawClient(server.port)
        sleeper.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert sleeper.login(f"sleeper{index}") == f"HELLO sleeper{index}".encode()
        sleepers.append(sleeper)
    alice = RawClient(server.port)
    assert alice.login("alice") == b"HELLO alice"
    body = b"z" * 60000
    dropped = False
    for _ in range(200):
        for index in range(3):
            alice.write(b"SEND sleeper%d " % index + body + b"\n")
            if alice.read_line() == b"BAD-DEST-USER":
                dropped = True
        if dropped:
            break
    assert dropped, "no slow reader was dropped"
    assert any(line.startswith("dropped sleeper") and
               line.endswith(": all slow readers together over 3145728 bytes") for line in log)
    alice.write(b"SEND echobot alive\n")
    assert alice.read_line() == b"SEND-OK"


def test_out_of_file_descriptors_is_one_log_line_and_serving_goes_on():
    import resource

    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    proc = subprocess.Popen([CHATSH, "serve", "--port", "0"], stderr=subprocess.PIPE,
                            env=chatsh_env(CHATSH_EVENT_LOOP="asyncio"),  # (it pauses accepting)
                            preexec_fn=few_descriptors)
    clients = []
    try:
        first = proc.stderr.readline().decode()
        while "listening on" not in first:  # after the line on the descriptors
            first = proc.stderr.readline().decode()
        port = int(first.split("127.0.0.1:")[1].split()[0])
        clients = [RawClient(port) for _ in range(60)]  # more than the server can hold
        user = RawClient(port)
        assert not user.closed(timeout=1.0)  # queued by the kernel, not yet accepted
        for client in clients:
            client.close()
        assert user.login("patient") == b"HELLO patient"
        user.close()
        proc.send_signal(signal.SIGTERM)
        log = proc.communicate(timeout=DEADLINE)[1].decode()  # read as it exits: never full
        assert proc.returncode == 0, log[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert log.count("cannot accept connections for now") == 1, log[-2000:]
    assert "Traceback" not in log


@pytest.mark.parametrize("name, shown", [
    ("n" * 64, "n" * 64),
    ("n" * 65, "n" * 64 + "... (65 long)"),
    (b"b" * 64, "b" * 64),
    (b"b" * 256, "b" * 64 + "... (256 long)"),
    (b"\xff" * 10, "\ufffd" * 10),
    ("\x1b[2J", "^[[2J"),
    ("é" * 64, "é" * 64),
    (b"\xc3\xa9" * 128, "é" * 64 + "... (256 long)"),
    (b"\xc3\xa9" * 129, "é" * 64 + "... (258 long)"),
    ("\U0001f600".encode() * 64, "\U0001f600" * 64),
])
def test_logged_names_are_cut_then_escaped(name, shown):
    from chatsh.serverlog import logged_name

    assert logged_name(name) == shown


def test_stopping_the_server_closes_its_connections():
    server = EmbeddedServer().start()
    user = RawClient(server.port)
    assert user.login("leaver") == b"HELLO leaver"
    server.stop()
    assert user.closed(timeout=5)


def test_a_burst_of_real_users_from_one_address_all_log_in(server_factory):
    server = server_factory(max_pending_per_address=4, max_pending=8, max_clients=100)
    burst = [RawClient(server.port) for _ in range(40)]  # all connect, then all log in
    for index, client in enumerate(burst):
        client.write(f"HELLO-FROM b{index}\n".encode())
    for index, client in enumerate(burst):
        assert client.read_line() == f"HELLO b{index}".encode()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_at_the_descriptor_limit_silent_connections_never_lock_out_a_login(loop):
    """With 64 descriptors and the default --max-pending 256, 75 silent connections from
    three addresses used to take every descriptor: no login could get in at all. asyncio
    pauses accepting at the limit; uvloop (libuv) closes at once whatever it cannot
    accept, so there the server keeps a descriptor free by closing the oldest waiting
    connection, however short its wait."""
    import resource

    if loop == "uvloop":
        pytest.importorskip("uvloop")

    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    proc = subprocess.Popen([CHATSH, "serve", "--port", "0"], stderr=subprocess.PIPE,
                            env=chatsh_env(CHATSH_EVENT_LOOP=loop), preexec_fn=few_descriptors)
    silent: list[RawClient] = []
    try:
        fitted = proc.stderr.readline().decode()
        assert "64 file descriptors" in fitted and "wait to log in" in fitted, fitted
        port = int(proc.stderr.readline().decode().split("127.0.0.1:")[1].split()[0])
        for index in range(75):
            silent.append(RawClient(port, source=f"127.0.0.{index % 3 + 1}"))
        for attempt in range(3):
            user = RawClient(port, source="127.0.0.9")
            assert user.login(f"real{attempt}") == f"HELLO real{attempt}".encode()
            user.close()
    finally:
        for client in silent:
            client.close()
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_only_uvloop_is_taken_for_a_loop_that_closes_what_it_cannot_accept(loop):
    """On asyncio's loop, which pauses accepting out of descriptors, no waiting connection
    is closed early to keep one free: that is for uvloop's, which closes the new one."""
    from chatsh.serving.loops import closes_what_it_cannot_accept

    new_loop = pytest.importorskip(loop).new_event_loop
    made = new_loop()
    try:
        assert closes_what_it_cannot_accept(made) is (loop == "uvloop")
    finally:
        made.close()


def test_an_embedded_server_that_fails_to_start_in_any_way_says_so(monkeypatch):
    """Before, only an OSError reached start(); anything else left it waiting for ever."""
    from chatsh.server import ChatServer

    async def broken_start(self, *where):
        raise RuntimeError("no loop for you")

    monkeypatch.setattr(ChatServer, "start", broken_start)
    with pytest.raises(OSError, match="RuntimeError: no loop for you"):
        EmbeddedServer().start()


def test_replies_to_the_last_requests_come_before_the_close(connect):
    """A client that writes its requests and shuts its side at once (``printf ... | nc``)
    still gets every reply: what the server had for it goes out before it closes."""
    for _ in range(20):
        client = connect()
        client.write(b"HELLO-FROM quick\nSEND echobot one\nSEND echobot two\nLIST\n")
        client.sock.shutdown(socket.SHUT_WR)
        lines = []
        while (line := client.read_line()) is not None:
            lines.append(line)
        assert lines == [b"HELLO quick", b"SEND-OK", b"DELIVERY echobot one", b"SEND-OK",
                         b"DELIVERY echobot two", b"LIST-OK echobot,quick"]


def test_idle_logged_in_users_hold_no_task_each(server, connect):
    """A connection held a task, a stream reader and a writer for as long as it lived:
    6.6 KiB for each idle logged-in user (a C relay holds 0.55). A connection is now a
    protocol object that a task serves only while its read waits for something."""

    async def tasks() -> int:
        return len(asyncio.all_tasks())

    users = [connect(f"idle{index}") for index in range(20)]
    users[0].write(b"LIST\n")
    assert users[0].read_line().startswith(b"LIST-OK echobot,idle0,")
    assert asyncio.run_coroutine_threadsafe(tasks(), server._loop).result(DEADLINE) < 5
