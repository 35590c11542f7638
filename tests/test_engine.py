"""The engine's reply pairing and send loop, against a scripted peer on a socketpair."""

import contextlib
import queue
import socket
import threading
import time

import pytest

from chatsh import protocol as p
from chatsh.engine import ClientEngine, HandshakeTimeout, LoginCancelled, send_all
from chatsh.session import (
    HELD_LINE_COST,
    MAX_HELD,
    Deliveries,
    Disconnected,
    LineTooLong,
    LoggedIn,
    LoginRefused,
    Replied,
)
from chatsh.words import Word


def each(events: queue.Queue):
    """An engine's handler that puts every event of a read on ``events``, the messages of
    a :class:`Deliveries` one by one as :class:`p.Delivery`."""
    def put(batch):
        for event in batch:
            if isinstance(event, Deliveries):
                for sender, body in event:
                    events.put(p.Delivery(sender, body))
            else:
                events.put(event)
    return put


class Peer:
    """The server's end of a socketpair, written by the test."""

    def __init__(self, window: int = 0, **engine_options):
        self.engine_end, self.end = socket.socketpair()
        self.engine = ClientEngine("test", 0, window=window, **engine_options)
        self.engine.attach(self.engine_end)
        self.events: queue.Queue = queue.Queue()
        self.received = b""

    def start(self, name: str = "me"):
        """Log in as ``name``, the peer answering HELLO; the verdict event is consumed."""
        self.end.send(f"HELLO {name}\n".encode())
        assert self.engine.log_in(name, each(self.events)) == LoggedIn(name, name)
        self.expect(f"HELLO-FROM {name}\n".encode())
        assert self.event() == LoggedIn(name, name)

    def expect(self, data: bytes):
        while len(self.received) < len(data):
            self.received += self.end.recv(65536)
        assert self.received[:len(data)] == data
        self.received = self.received[len(data):]

    def event(self):
        return self.events.get(timeout=5)


def test_replies_pair_with_requests_in_order():
    peer = Peer()
    peer.start()
    first = peer.engine.send_message("bob", "one")
    second = peer.engine.request_users()
    third = peer.engine.send_message("ghost", "three")
    peer.expect(b"SEND bob one\nLIST\nSEND ghost three\n")
    peer.end.send(b"SEND-OK\nDELIVERY bob back\nLIST-OK echobot,me\r\nBAD-DEST-USER\n")
    assert peer.event() == Replied(first, p.SendOk())
    assert peer.event() == p.Delivery("bob", "back")
    assert peer.event() == Replied(second, p.ListOk(("echobot", "me")))
    assert peer.event() == Replied(third, p.BadDestUser())
    assert peer.engine.waiting == 0


def test_error_reply_answers_the_oldest_request_or_stands_alone():
    peer = Peer()
    peer.start()
    request = peer.engine.send_message("bob", "x")
    peer.end.send(b"BAD-RQST-BODY\nBAD-RQST-HDR\nNONSENSE here\n")
    assert peer.event() == Replied(request, p.BadRequestBody())
    assert peer.event() == p.BadRequestHeader()
    assert peer.event() == p.UnknownLine("NONSENSE here")


def test_a_line_split_over_many_writes_arrives_once():
    peer = Peer()
    peer.start()
    for piece in (b"DELI", b"VERY al", b"ice h\xc3", b"\xa9llo", b"\n"):
        peer.end.send(piece)
    peer.end.send(b"DELIVERY bob marker\n")
    assert peer.event() == p.Delivery("alice", "héllo")
    assert peer.event() == p.Delivery("bob", "marker")


def test_disconnect_names_the_unanswered_requests():
    peer = Peer()
    peer.start()
    answered = peer.engine.send_message("bob", "one")
    lost = peer.engine.send_message("bob", "two")
    peer.end.send(b"SEND-OK\nDELIVERY bob half a li")
    peer.end.close()
    assert peer.event() == Replied(answered, p.SendOk())
    assert peer.event() == Disconnected((lost,))
    with pytest.raises(ConnectionError):
        peer.engine.send_message("bob", "three")


def test_login_keeps_lines_that_came_before_and_with_the_verdict():
    peer = Peer()
    peer.end.send(b"DELIVERY bob early\nHELLO me\nDELIVERY bob with\n")
    assert peer.engine.log_in("me", each(peer.events)) == LoggedIn("me", "me")
    assert peer.event() == LoggedIn("me", "me")
    assert peer.event() == p.Delivery("bob", "early")
    assert peer.event() == p.Delivery("bob", "with")


def test_a_busy_server_is_left_and_nothing_more_is_reported():
    peer = Peer()
    peer.end.send(b"BUSY\n")
    verdict = peer.engine.log_in("me", each(peer.events))
    assert verdict == LoginRefused("me", p.Busy())
    assert peer.event() == verdict
    assert peer.end.recv(100) == b"HELLO-FROM me\n"
    assert peer.end.recv(100) == b""  # the engine closed its end
    assert peer.events.empty()
    assert not peer.engine.connected


def test_after_in_use_the_next_name_goes_on_the_connection_the_server_kept():
    peer = Peer()

    def answered(name: str, reply: bytes):
        """Log in as ``name`` from another thread; the peer answers once it has the
        HELLO-FROM, as a server does."""
        verdicts: list = []
        login = threading.Thread(target=lambda: verdicts.append(
            peer.engine.log_in(name, each(peer.events))))
        login.start()
        peer.expect(f"HELLO-FROM {name}\n".encode())
        peer.end.send(reply)
        login.join(5)
        return verdicts[0]

    assert answered("me", b"IN-USE\n") == LoginRefused("me", p.InUse())
    assert answered("zed", b"BAD-RQST-BODY\n") == LoginRefused("zed", p.BadRequestBody())
    assert answered("me2", b"HELLO me2\n") == LoggedIn("me2", "me2")
    assert [peer.event() for _ in range(3)] == [
        LoginRefused("me", p.InUse()), LoginRefused("zed", p.BadRequestBody()),
        LoggedIn("me2", "me2")]
    assert peer.engine.connected


def test_after_a_refusal_and_a_close_the_next_name_goes_on_a_new_connection(server_factory):
    server = server_factory(close_on_refusal=True)
    holder = ClientEngine("127.0.0.1", server.port)
    engine = ClientEngine("127.0.0.1", server.port)
    events: queue.Queue = queue.Queue()
    try:
        assert holder.log_in("taken", each(events)) == LoggedIn("taken", "taken")
        assert engine.log_in("taken", each(events)) == LoginRefused("taken", p.InUse())
        assert engine.log_in("free", each(events)) == LoggedIn("free", "free")
    finally:
        holder.close()
        engine.close()


def test_window_bounds_requests_in_flight():
    peer = Peer(window=2)
    peer.start()
    peer.engine.send_message("a", "1")
    peer.engine.send_message("a", "2")
    done = threading.Event()
    threading.Thread(target=lambda: (peer.engine.send_message("a", "3"), done.set())).start()
    assert not done.wait(0.2)
    peer.end.send(b"SEND-OK\n")
    assert done.wait(5)


class TrickleSocket:
    """A socket whose send takes at most three bytes at a time."""

    def __init__(self):
        self.data = b""

    def send(self, view):
        chunk = bytes(view[:3])
        self.data += chunk
        return len(chunk)


def test_send_all_survives_partial_sends():
    sock = TrickleSocket()
    send_all(sock, b"SEND bob a longer message\n")
    assert sock.data == b"SEND bob a longer message\n"


def test_silent_server_times_out_the_login_with_a_message():
    listener = socket.create_server(("127.0.0.1", 0))
    engine = ClientEngine("127.0.0.1", listener.getsockname()[1], handshake_timeout=0.3)
    with pytest.raises(HandshakeTimeout, match="did not answer the login within 0.3 s"):
        engine.log_in("me", lambda events: None)
    engine.close()
    listener.close()


def test_closing_the_engine_cancels_a_login_that_waits_at_once():
    """The shell's Ctrl-C while a login waits: close() from another thread ends the wait
    with LoginCancelled, not a HandshakeTimeout at the deadline."""
    listener = socket.create_server(("127.0.0.1", 0))
    engine = ClientEngine("127.0.0.1", listener.getsockname()[1], handshake_timeout=30)
    threading.Timer(0.2, engine.close).start()
    started = time.monotonic()
    with pytest.raises(LoginCancelled):
        engine.log_in("me", lambda events: None)
    assert time.monotonic() - started < 5
    listener.close()


def test_one_deadline_covers_a_handshake_of_unknown_lines():
    peer = Peer(handshake_timeout=0.5)
    chatter = threading.Event()

    def chat():
        with contextlib.suppress(OSError):  # the engine hangs up at its deadline
            while not chatter.wait(0.1):
                peer.end.send(b"PLEASE WAIT\n")

    threading.Thread(target=chat, daemon=True).start()
    try:
        with pytest.raises(HandshakeTimeout):
            peer.engine.log_in("me", each(peer.events))
    finally:
        chatter.set()
    assert peer.event() == p.UnknownLine("PLEASE WAIT")  # what did come is shown


def test_line_over_the_client_cap_is_skipped_and_reported():
    peer = Peer(max_line=1000)
    peer.start()
    peer.end.send(b"DELIVERY bob " + b"x" * 5000)
    peer.end.send(b"x" * 5000 + b"\nDELIVERY bob after\n")
    assert peer.event() == LineTooLong(1000)
    assert peer.event() == p.Delivery("bob", "after")


def test_non_utf8_and_unknown_lines_never_raise():
    peer = Peer()
    peer.start()
    peer.end.send(b"DELIVERY b\xffb caf\xe9\n" + b"WHAT\n" * 1000 + b"DELIVERY bob end\n")
    assert peer.event() == p.Delivery("b\ufffdb", "caf\ufffd")
    for _ in range(1000):
        assert peer.event() == p.UnknownLine("WHAT")
    assert peer.event() == p.Delivery("bob", "end")


def test_a_new_engine_is_idle_and_closes_cleanly():
    engine = ClientEngine("127.0.0.1", 1)
    assert (engine.window, engine.waiting, engine.connected) == (0, 0, False)
    with pytest.raises(ConnectionError) as caught:
        engine.send_message("bob", "hi")
    assert str(caught.value) == "not connected"
    engine.close()  # nothing to close: no error


def test_nothing_listening_names_host_port_and_reason():
    from chatsh.engine import ConnectError

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    engine = ClientEngine("127.0.0.1", port)
    with pytest.raises(ConnectError) as caught:
        engine.log_in("me", lambda events: None)
    error = caught.value
    assert (error.host, error.port, error.reason) == ("127.0.0.1", port, "Connection refused")
    assert str(error) == f"Cannot connect to 127.0.0.1:{port}: Connection refused"


def test_requests_carry_their_script_line_and_quietness_through_the_engine():
    from chatsh.session import ScriptLine

    peer = Peer()
    peer.start()
    line = ScriptLine(4, "@bob hi")
    sent = peer.engine.send_message("bob", "hi", line)
    listed = peer.engine.request_users(ScriptLine(5, "!who"), quiet=True)
    assert (sent.line, sent.header) == (line, Word.SEND)
    assert (listed.line, listed.quiet, listed.header) == (ScriptLine(5, "!who"), True, Word.LIST)
    peer.expect(b"SEND bob hi\nLIST\n")


def test_without_a_window_requests_never_wait_for_replies():
    left, right = socket.socketpair()
    engine = ClientEngine("test", 0)
    engine.attach(left)
    right.send(b"HELLO me\n")
    engine.log_in("me", lambda events: None)
    for index in range(50):
        engine.send_message("bob", f"unanswered {index}")
    assert engine.waiting == 50
    engine.close()
    right.close()


def test_the_reader_is_a_daemon_thread_and_may_close_its_own_engine():
    peer = Peer()
    closed = threading.Event()

    def on_events(events):
        if any(isinstance(event, Disconnected) for event in events):
            peer.engine.close()  # from the reader thread itself: no self-join
            closed.set()

    peer.end.send(b"HELLO me\n")
    peer.engine.log_in("me", on_events)
    readers = [t for t in threading.enumerate() if t.name == "chatsh-reader"]
    assert readers and all(t.daemon for t in readers)
    peer.end.close()
    assert closed.wait(5)
    peer.engine._reader.join(5)
    assert not peer.engine._reader.is_alive()


def test_after_close_no_event_is_reported():
    peer = Peer()
    peer.start()
    peer.engine.close()  # joins the reader: anything it reported is queued by now
    assert peer.events.empty()
    assert peer.end.recv(100) == b""


def test_leaving_reads_until_the_server_closes_and_reports_nothing():
    """leave(): end of stream first; lines the server still sends are read and dropped
    (none is left unread to reset the connection with); the close follows the server's."""
    peer = Peer()
    peer.start()
    leaving = threading.Thread(target=peer.engine.leave, args=(5.0,))
    leaving.start()
    assert peer.end.recv(100) == b""  # the engine's end of stream
    peer.end.sendall(b"DELIVERY bob late\n" * 1000)
    assert leaving.is_alive()  # it reads on while the server has not closed
    peer.end.shutdown(socket.SHUT_WR)
    leaving.join(5)
    assert not leaving.is_alive()
    assert peer.events.empty()


def test_leaving_waits_for_the_server_close_no_longer_than_its_linger():
    peer = Peer()
    peer.start()
    started = time.monotonic()
    peer.engine.leave(0.2)  # the server never closes
    assert 0.2 <= time.monotonic() - started < 2
    assert peer.end.recv(100) == b""
    assert peer.events.empty()


def test_a_reset_connection_is_a_disconnect():
    peer = Peer()
    peer.start()
    waiting = peer.engine.request_users()
    assert not waiting.quiet
    peer.end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.end.close()  # with linger 0: a reset, not an orderly close
    assert peer.event() == Disconnected((waiting,))


def test_a_send_on_a_broken_socket_says_why():
    peer = Peer()
    peer.start()
    peer.engine._sock.shutdown(socket.SHUT_WR)  # writing fails; the reader reads on
    with pytest.raises(ConnectionError) as caught:
        peer.engine.send_message("bob", "hi")
    assert "Broken pipe" in str(caught.value)


def test_a_window_of_one_holds_the_second_request():
    peer = Peer(window=1)
    peer.start()
    peer.engine.send_message("a", "1")
    done = threading.Event()
    threading.Thread(target=lambda: (peer.engine.send_message("a", "2"), done.set()),
                     daemon=True).start()
    assert not done.wait(0.3)
    peer.end.send(b"SEND-OK\n")
    assert done.wait(5)


def test_wait_idle_waits_for_every_reply_or_the_deadline():
    peer = Peer()
    peer.start()
    assert peer.engine.wait_idle(0) is True  # nothing owed
    peer.engine.send_message("bob", "one")
    assert peer.engine.wait_idle(0.2) is False
    threading.Timer(0.05, peer.end.send, args=(b"SEND-OK\n",)).start()
    assert peer.engine.wait_idle(5) is True
    peer.engine.send_message("bob", "two")
    peer.end.close()  # a lost link owes nothing more
    assert peer.engine.wait_idle(5) is True


def test_the_engine_stops_reading_past_the_bound_before_the_verdict():
    """A server that sends megabytes of lines before HELLO cannot fill our memory: past
    MAX_HELD the engine reads no more, and the login times out showing what came."""
    peer = Peer(handshake_timeout=1.5)
    peer.end.settimeout(0.5)
    line = b"DELIVERY bob " + b"x" * 1000 + b"\n"
    sent = 0
    verdict: list = []
    login = threading.Thread(target=lambda: verdict.append(
        pytest.raises(HandshakeTimeout, peer.engine.log_in, "me", each(peer.events))))
    login.start()
    with contextlib.suppress(TimeoutError, OSError):
        while sent < 64 << 20:
            sent += peer.end.send(line * 64)
    login.join(10)
    assert verdict, "the login did not give up"
    assert sent < MAX_HELD + (8 << 20)  # the bound, and what the kernel buffers
    shown = 0
    while not peer.events.empty():
        shown += isinstance(peer.events.get_nowait(), p.Delivery)
    assert shown * (len(line) - 1 + HELD_LINE_COST) >= MAX_HELD  # each line's objects count


def test_a_kept_connection_closed_just_before_the_next_name_is_tried_again_on_a_new_one():
    """The server closes after IN-USE, but only once the next HELLO-FROM is on its way:
    that login goes again on a new connection, and no 'lost' is reported for it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        first, _ = listener.accept()
        reader = first.makefile("rb")
        assert reader.readline() == b"HELLO-FROM taken\n"
        first.sendall(b"IN-USE\n")
        assert reader.readline() == b"HELLO-FROM free\n"
        reader.close()
        first.close()  # too late for that name
        second, _ = listener.accept()
        assert second.makefile("rb").readline() == b"HELLO-FROM free\n"
        second.sendall(b"HELLO free\n")
        served.append(second)

    served: list = []
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    engine = ClientEngine("127.0.0.1", listener.getsockname()[1])
    events: queue.Queue = queue.Queue()
    try:
        assert engine.log_in("taken", each(events)) == LoginRefused("taken", p.InUse())
        assert engine.log_in("free", each(events)) == LoggedIn("free", "free")
        thread.join(5)
        assert [events.get(timeout=5) for _ in range(2)] == [
            LoginRefused("taken", p.InUse()), LoggedIn("free", "free")]
        assert events.empty()
    finally:
        engine.close()
        listener.close()
        for conn in served:
            conn.close()


def test_the_connection_to_the_server_is_kept_alive(server):
    """A server gone without a word (a machine off, a NAT that forgot the connection)
    left the shell 'connected' for good while nothing was sent: the kernel now probes a
    connection idle for a minute, and a dead one ends in about two, and reconnects."""
    engine = ClientEngine("127.0.0.1", server.port)
    try:
        assert isinstance(engine.log_in("kept", lambda events: None), LoggedIn)
        sock = engine._sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 15
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
    finally:
        engine.close()
