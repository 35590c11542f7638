"""A model of the server, checked against the real one over real sockets.

Hypothesis drives several clients of an embedded server at once: they connect, log in
with free, taken, look-alike and bad names, retry after a refusal, send to present and
absent users and to echobot, list the users and leave cleanly or abruptly. Every reply is
checked against a small model: names are unique by what they look like, each SEND-OK is
delivered once and in order, each refusal is the right one, LIST gives the model's users.
Every wait is a read or a poll with a deadline; a failure prints the blob that
reproduces it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from conftest import RawClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from chatsh.embedded import EmbeddedServer
from chatsh.server import ServerConfig

T = TypeVar("T")

WAIT = 5.0
"""Seconds to wait for a line, a close or a logout: what never comes fails in that time."""

MAX_USERS = 3
MAX_REFUSALS = 3
MAX_CONNECTIONS = 6
ECHOBOT = "echobot"

BASES = ("ann", "bob", "cara", "dex")
"""Names that do not look like each other; each look below keeps what a name looks like."""
LOOKS = {
    "upper": str.upper,
    "title": str.title,
    "fullwidth": lambda name: "".join(chr(ord(char) + 0xFEE0) if char.isascii() else char
                                      for char in name),
    "cyrillic": lambda name: name.translate(str.maketrans("aeocxABEOCX", "аеосхАВЕОСХ")),
    "greek": lambda name: name.translate(str.maketrans("aoxABEO", "αοχΑΒΕΟ")),
}
BREAKERS = "!@#$%^&*,\t\x1b\x7f\x85\u200b\u202e\ufeff"
"""What no name may hold (besides a space, which a SEND would read as the name's end)."""


@dataclass(frozen=True)
class Name:
    text: str
    looks_like: str | None
    """The base name it looks like; None: a name the protocol refuses."""


def _good(base: str, looks: list[str]) -> Name:
    text = base
    for look in looks:
        text = LOOKS[look](text)
    return Name(text, base)


def _bad(base: str, char: str, at: int) -> Name:
    at %= len(base) + 1
    return Name(base[:at] + char + base[at:], None)


def mostly(usual: st.SearchStrategy[T], rare: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``usual`` about four times in five, else ``rare`` (a flat one_of would weigh each
    of its branches, nested ones included, the same)."""
    return st.integers(0, 4).flatmap(lambda pick: rare if pick == 4 else usual)


good_names = st.builds(_good, st.sampled_from((*BASES, ECHOBOT)),
                       st.lists(st.sampled_from(list(LOOKS)), max_size=2))
bad_names = st.one_of(
    st.builds(_bad, st.sampled_from(BASES), st.sampled_from(BREAKERS), st.integers(0, 5)),
    st.just(Name("", None)), st.just(Name("n" * 65, None)))
login_names = mostly(good_names, st.one_of(
    bad_names, st.builds(_bad, st.sampled_from(BASES), st.just(" "), st.integers(1, 3))))
"""Mostly names that can log in (or look like one that has), now and then a bad one."""
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0"),
                min_size=1, max_size=40)
bodies = mostly(texts, st.builds(lambda head, char, tail: head + char + tail,
                                 texts, st.sampled_from("\r\0"), texts))
"""Bodies of a SEND, with now and then a NUL or \\r inside, which the server refuses
(never at the end: a line's one trailing \\r is taken as its line end)."""
not_logins = st.sampled_from([b"LIST\n", b"SEND bob hi\n", b"HI there\n"])
"""First lines that are no HELLO-FROM."""


@dataclass(eq=False)
class Peer:
    """One connection and what the model expects of it."""

    client: RawClient
    name: str | None = None
    refusals: int = 0
    owed: deque[bytes] = field(default_factory=deque)
    """DELIVERY lines the server has promised this peer, in order."""


def listed(reply: bytes) -> tuple[str, list[str]]:
    """A LIST-OK's first name and the others in order (no order is promised for them)."""
    first, *others = reply.removeprefix(b"LIST-OK ").decode().split(",")
    return first, sorted(others)


class ChatModel(RuleBasedStateMachine):
    new_loop = staticmethod(asyncio.new_event_loop)
    """The event loop the server runs on."""

    def __init__(self) -> None:
        super().__init__()
        self.server = EmbeddedServer(ServerConfig(max_clients=MAX_USERS,
                                                  max_refusals=MAX_REFUSALS),
                                     new_loop=self.new_loop).start()
        self.peers: list[Peer] = []
        self.users: dict[str, Peer] = {}
        """Logged-in peers by the base name their name looks like."""

    def teardown(self) -> None:
        try:
            for peer in self.logged_in():  # a LIST is a barrier: no delivery comes twice
                peer.client.write(b"LIST\n")
                assert listed(self.reply(peer)) == self.listing()
        finally:
            for peer in self.peers:
                peer.client.close()
            self.server.stop()

    # --- what the model knows ---------------------------------------------------

    def fresh(self) -> list[Peer]:
        return [peer for peer in self.peers if peer.name is None]

    def logged_in(self) -> list[Peer]:
        return [peer for peer in self.peers if peer.name is not None]

    def listing(self) -> tuple[str, list[str]]:
        """What a LIST-OK must give, as :func:`listed` reads it."""
        return ECHOBOT, sorted(str(peer.name) for peer in self.users.values())

    def login_reply(self, name: Name) -> bytes:
        if name.looks_like is None:
            return b"BAD-RQST-BODY"
        if len(self.users) >= MAX_USERS:
            return b"BUSY"
        if name.looks_like == ECHOBOT or name.looks_like in self.users:
            return b"IN-USE"
        return b"HELLO " + name.text.encode()

    def send(self, sender: Peer, destination: Name, body: str) -> tuple[bytes, bytes]:
        """A SEND line and the reply the model expects; what it delivers is owed."""
        request = b"SEND " + destination.text.encode() + b" " + body.encode() + b"\n"
        recipient = next((peer for peer in self.users.values()
                          if peer.name == destination.text), None)
        if destination.looks_like is None or "\r" in body or "\0" in body:
            return request, b"BAD-RQST-BODY"
        if destination.text == ECHOBOT:
            sender.owed.append(f"DELIVERY {ECHOBOT} {body}".encode())
        elif recipient is not None:
            recipient.owed.append(f"DELIVERY {sender.name} {body}".encode())
        else:
            return request, b"BAD-DEST-USER"
        return request, b"SEND-OK"

    # --- talking to the server --------------------------------------------------

    def reply(self, peer: Peer) -> bytes:
        """The next reply to ``peer``; the deliveries before it must be the ones owed."""
        while True:
            got = peer.client.read_line(WAIT)
            assert got is not None, f"{peer.name or 'a new connection'} was closed"
            if not got.startswith(b"DELIVERY "):
                return got
            assert peer.owed, f"{peer.name} got {got!r}, owed nothing"
            assert got == peer.owed.popleft(), f"{peer.name}: a delivery out of order"

    def settle(self, peer: Peer) -> None:
        """Read what ``peer`` is owed, each line once and in order."""
        while peer.owed:
            expected = peer.owed.popleft()
            assert peer.client.read_line(WAIT) == expected, f"{peer.name} missed {expected!r}"

    def gone(self, peer: Peer) -> None:
        """The server closed ``peer`` after its reply, as the model says it must; the
        client connects again, as a client asking for another name does."""
        assert peer.client.closed(WAIT), "the server kept a connection it must close"
        peer.client.close()
        self.peers.remove(peer)
        self.connect()

    # --- rules ------------------------------------------------------------------

    @initialize()
    def two_connections(self) -> None:
        self.connect()
        self.connect()

    @precondition(lambda self: len(self.peers) < MAX_CONNECTIONS)
    @rule()
    def connect(self) -> None:
        self.peers.append(Peer(RawClient(self.server.port)))

    @precondition(lambda self: self.fresh())
    @rule(data=st.data(), name=mostly(login_names, not_logins))
    def log_in(self, data: st.DataObject, name: Name | bytes) -> None:
        """A first login, a retry on a connection refused before, or (now and then) a
        first line that is not HELLO-FROM."""
        peer = data.draw(st.sampled_from(self.fresh()))
        if isinstance(name, bytes):
            peer.client.write(name)
            assert self.reply(peer) == b"BAD-RQST-HDR"
            self.gone(peer)
            return
        peer.client.write(b"HELLO-FROM " + name.text.encode() + b"\n")
        got = self.reply(peer)
        assert got == self.login_reply(name), (name, list(self.users))
        if name.looks_like is not None and got.startswith(b"HELLO "):
            peer.name = name.text
            self.users[name.looks_like] = peer
            return
        peer.refusals += 1
        if got == b"BUSY" or peer.refusals == MAX_REFUSALS:
            self.gone(peer)

    def requests(self) -> st.SearchStrategy[tuple[Name, str] | tuple[bytes, bytes]]:
        """A request of a logged-in user: mostly a SEND (its destination and body), else a
        LIST, a second HELLO-FROM or a bad header or body, with the reply it gets."""
        present = [Name(str(peer.name), base) for base, peer in self.users.items()]
        sends = st.tuples(mostly(st.sampled_from(present), mostly(good_names, bad_names)),
                          bodies)
        return mostly(sends, st.sampled_from([
            (b"LIST\n", b"LIST-OK"), (b"HELLO-FROM ann\n", b"BAD-RQST-HDR"),
            (b"SHOUT hi\n", b"BAD-RQST-HDR"), (b"SEND\n", b"BAD-RQST-BODY")]))

    @precondition(lambda self: self.users)
    @rule(data=st.data(), count=st.integers(1, 4))
    def make_requests(self, data: st.DataObject, count: int) -> None:
        """One to four requests in one write: replies in order, then every delivery."""
        sender = data.draw(st.sampled_from(self.logged_in()))
        requests = self.requests()
        sent = [self.send(sender, *request) if isinstance(request[0], Name) else request
                for request in (data.draw(requests) for _ in range(count))]
        sender.client.write(b"".join(request for request, _ in sent))
        for request, expected in sent:
            got = self.reply(sender)
            if expected == b"LIST-OK":
                assert listed(got) == self.listing(), got
            else:
                assert got == expected, request
        for peer in self.logged_in():
            self.settle(peer)

    @precondition(lambda self: self.peers)
    @rule(data=st.data(), abruptly=st.booleans())
    def disconnect(self, data: st.DataObject, abruptly: bool) -> None:
        peer = data.draw(st.sampled_from(self.peers))
        if abruptly:  # a reset, not a goodbye
            peer.client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
        peer.client.close()
        self.peers.remove(peer)
        if peer.name is None:
            return
        del self.users[next(base for base, user in self.users.items() if user is peer)]
        claims = self.server._server.backplane._claims  # free once the server saw it go
        deadline = time.monotonic() + WAIT
        while peer.name in list(claims.values()):
            assert time.monotonic() < deadline, f"{peer.name} was never logged out"
            time.sleep(0.005)

    @invariant()
    def nothing_is_owed(self) -> None:
        assert not any(peer.owed for peer in self.peers)


ChatModel.TestCase.settings = settings(
    max_examples=60, stateful_step_count=50, deadline=None, database=None, print_blob=True,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
"""Bounded for CI (5 to 15 s on a quiet machine); no example database, so a run never
passes or fails by what an earlier one saved; a failure prints the @reproduce_failure
blob to rerun it."""
ChatModel.TestCase.pytestmark = pytest.mark.timeout(420)
"""Real sockets on a loaded machine can take several times as long as on a quiet one,
and a failure is shrunk for up to 300 s (Hypothesis's own bound) before it prints its
blob: the suite's 30 s per test would cut either short (a cut run is reported as a
flaky strategy, not a bug)."""
test_the_server_follows_its_model = ChatModel.TestCase


class ChatModelOnUvloop(ChatModel):
    """The same model against the server on uvloop's event loop (``chatsh serve``'s when
    it is installed), with fewer examples."""


if importlib.util.find_spec("uvloop"):
    import uvloop

    ChatModelOnUvloop.new_loop = staticmethod(uvloop.new_event_loop)
    ChatModelOnUvloop.TestCase.settings = settings(ChatModel.TestCase.settings,
                                                   max_examples=20)
    ChatModelOnUvloop.TestCase.pytestmark = pytest.mark.timeout(420)
    test_the_server_on_uvloop_follows_its_model = ChatModelOnUvloop.TestCase
