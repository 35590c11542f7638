"""The engine's reply pairing and send loop, against a scripted peer on a socketpair."""

import queue
import socket
import threading

import pytest

from chatsh import protocol as p
from chatsh.engine import ClientEngine, HandshakeTimeout, send_all
from chatsh.session import Disconnected, LineTooLong, LoggedIn, LoginRefused, Replied


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
        assert self.engine.log_in(name, self.events.put) == LoggedIn(name, name)
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
    assert peer.engine.log_in("me", peer.events.put) == LoggedIn("me", "me")
    assert peer.event() == LoggedIn("me", "me")
    assert peer.event() == p.Delivery("bob", "early")
    assert peer.event() == p.Delivery("bob", "with")


def test_refused_login_closes_and_reports_nothing_more():
    peer = Peer()
    peer.end.send(b"IN-USE\n")
    verdict = peer.engine.log_in("me", peer.events.put)
    assert verdict == LoginRefused("me", p.InUse())
    assert peer.event() == verdict
    assert peer.end.recv(100) == b"HELLO-FROM me\n"
    assert peer.end.recv(100) == b""  # the engine closed its end
    assert peer.events.empty()
    assert not peer.engine.connected


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
        engine.log_in("me", lambda event: None)
    engine.close()
    listener.close()


def test_one_deadline_covers_a_handshake_of_unknown_lines():
    peer = Peer(handshake_timeout=0.5)
    chatter = threading.Event()

    def chat():
        while not chatter.wait(0.1):
            peer.end.send(b"PLEASE WAIT\n")

    threading.Thread(target=chat, daemon=True).start()
    try:
        with pytest.raises(HandshakeTimeout):
            peer.engine.log_in("me", peer.events.put)
    finally:
        chatter.set()


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
