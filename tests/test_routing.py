"""The server's quick path for a logged-in user's lines answers every line as the
protocol's parser reads it: a SEND checked in place is the same SEND, the same bad body,
the same bad header."""

from __future__ import annotations

import asyncio

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatsh import protocol as p
from chatsh.backplane import LocalBackplane
from chatsh.framing import OversizedLine
from chatsh.registry import UserRegistry
from chatsh.routing import NAMES_REMEMBERED, Router
from chatsh.serverconfig import ServerConfig
from chatsh.serving.connection import Connection
from chatsh.serving.stats import ServerStats


class Transport:
    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        pass


async def router_with(*names: str) -> tuple[Router, list[Connection]]:
    backplane = LocalBackplane()
    users: UserRegistry[Connection] = UserRegistry(backplane, 10)
    router = Router(ServerConfig(), lambda line: None, ServerStats(), backplane, users)
    conns = []
    for name in names:
        conn = Connection(router, 1 << 20, False)  # type: ignore[arg-type]
        conn.transport = Transport()  # type: ignore[assignment]
        conn.name = name
        assert await users.admit(name, conn) == b""
        conns.append(conn)
    return router, conns


words = st.sampled_from([b"SEND"] * 5 + [b"LIST", b"HELLO-FROM", b"SEND-OK", b"send", b""])
names = st.sampled_from([b"bob", b"alice", b"echobot", b"nobody", b"b\xc3\xb6b", b"\xff",
                         b"a,b", b"x" * 300, b"", b"b\rb"])
bodies = st.lists(st.sampled_from([b"hi", b" ", b"h\xc3\xa9", b"\xff", b"\r", b"\0",
                                   b"\t", b"x" * 100]), max_size=4).map(b"".join)
spaces = st.sampled_from([b" "] * 4 + [b"  ", b""])
lines = st.one_of(
    st.tuples(words, spaces, names, spaces, bodies, st.sampled_from([b"", b"\r", b"\r\r"])
              ).map(b"".join),
    st.binary(max_size=20))


@settings(max_examples=1000)
@given(line=lines)
@example(line=b"SEND bob a\0b")  # each check of the quick path, whatever is drawn
@example(line=b"SEND bob a\rb")
@example(line=b"SEND bob \xff")
@example(line=b"SEND bob")
@example(line=b"SEND b,b hi")
def test_each_line_is_answered_as_the_parser_reads_it(line: bytes) -> None:
    async def check() -> None:
        router, (alice, bob) = await router_with("alice", "bob")
        replies: list[bytes] = []
        later: list = []
        router.answer(alice, [line], replies, later)
        request = p.parse_client_line(line)
        delivery = p.encode_delivery("alice", getattr(request, "body", b""))
        if isinstance(request, p.SendRequest):
            assert router.stats.sends == 1
            expected = {"echobot": [p.SEND_OK, p.encode_delivery("echobot", request.body)],
                        "alice": [p.SEND_OK, delivery], "bob": [p.SEND_OK]}
            assert replies == expected.get(request.destination, [b""])
            assert bob.unsent == ([delivery] if request.destination == "bob" else [])
            assert [(item.destination, item.delivery) for item in later] == (
                [] if request.destination in expected else [(request.destination, delivery)])
            return
        assert router.stats.sends == 0 and bob.unsent == []
        assert router.stats.requests[type(request)] == 1
        if isinstance(request, p.ListRequest):
            assert replies == [b""] and [item.destination for item in later] == [""]
        else:
            bad = p.BAD_RQST_BODY if isinstance(request, p.MalformedBody) else p.BAD_RQST_HDR
            assert (replies, later) == ([bad], [])

    asyncio.run(check())


def test_an_over_long_line_is_a_bad_body() -> None:
    async def check() -> None:
        router, (alice,) = await router_with("alice")
        replies: list[bytes] = []
        router.answer(alice, [OversizedLine(10)], replies, [])
        assert replies == [p.BAD_RQST_BODY]

    asyncio.run(check())


def test_the_destinations_remembered_are_bounded() -> None:
    async def check() -> None:
        router, (alice,) = await router_with("alice")
        lines = [b"SEND n%d hi" % index for index in range(NAMES_REMEMBERED + 10)]
        later: list = []
        router.answer(alice, lines + [b"SEND " + b"x" * 300 + b" hi"], [], later)
        assert len(later) == NAMES_REMEMBERED + 10  # every one routed on (nobody here)
        assert 0 < len(router._names) <= NAMES_REMEMBERED

    asyncio.run(check())

