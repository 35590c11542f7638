import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatsh import protocol as p


@pytest.mark.parametrize("line, event", [
    (b"HELLO alice", p.Hello("alice")),
    (b"IN-USE", p.InUse()),
    (b"BUSY", p.Busy()),
    (b"LIST-OK echobot,alice,bob", p.ListOk(("echobot", "alice", "bob"))),
    (b"LIST-OK echobot", p.ListOk(("echobot",))),
    (b"LIST-OK ", p.ListOk(())),
    (b"LIST-OK a,,b,", p.ListOk(("a", "b"))),
    (b"SEND-OK", p.SendOk()),
    (b"SEND-OK\r", p.SendOk()),
    (b"BAD-DEST-USER", p.BadDestUser()),
    (b"DELIVERY bob hi there  you", p.Delivery("bob", "hi there  you")),
    (b"DELIVERY bob caf\xc3\xa9 \xf0\x9f\x98\x80", p.Delivery("bob", "café 😀")),
    (b"DELIVERY bob bad \xff byte", p.Delivery("bob", "bad \ufffd byte")),
    (b"DELIVERY bob line\r", p.Delivery("bob", "line")),
    (b"DELIVERY bob a\r\r", p.Delivery("bob", "a\r")),
    (b"BAD-RQST-HDR", p.BadRequestHeader()),
    (b"BAD-RQST-BODY", p.BadRequestBody()),
    (b"DELIVERY", p.UnknownLine("DELIVERY")),
    (b"DELIVERY bob", p.UnknownLine("DELIVERY bob")),
    (b"HELLO", p.UnknownLine("HELLO")),
    (b"SEND-OK extra", p.UnknownLine("SEND-OK extra")),
    (b"send-ok", p.UnknownLine("send-ok")),
    (b"WHATEVER 1 2", p.UnknownLine("WHATEVER 1 2")),
    (b"", p.UnknownLine("")),
])
def test_server_lines(line, event):
    assert p.parse_server_line(line) == event


@pytest.mark.parametrize("line, request_", [
    (b"HELLO-FROM alice", p.HelloFrom("alice")),
    (b"HELLO-FROM j\xc3\xbcrgen", p.HelloFrom("jürgen")),
    (b"HELLO-FROM alice\r", p.HelloFrom("alice")),
    (b"HELLO-FROM", p.MalformedBody()),
    (b"HELLO-FROM ", p.MalformedBody()),
    (b"HELLO-FROM a b", p.MalformedBody()),
    (b"HELLO-FROM a,b", p.MalformedBody()),
    (b"HELLO-FROM a\x1bb", p.MalformedBody()),
    (b"HELLO-FROM \xff", p.MalformedBody()),
    (b"LIST", p.ListRequest()),
    (b"LIST x", p.MalformedBody()),
    (b"SEND bob hi there", p.SendRequest("bob", b"hi there")),
    (b"SEND bob  lead", p.SendRequest("bob", b" lead")),
    (b"SEND bob", p.MalformedBody()),
    (b"SEND bob ", p.MalformedBody()),
    (b"SEND  hi", p.MalformedBody()),
    (b"SEND b*b hi", p.MalformedBody()),
    (b"SEND bob \xff", p.MalformedBody()),
    (b"SEND bob a\x00b", p.MalformedBody()),
    (b"SEND", p.MalformedBody()),
    (b"GARBAGE", p.MalformedHeader()),
    (b"list", p.MalformedHeader()),
    (b"", p.MalformedHeader()),
])
def test_client_lines(line, request_):
    assert p.parse_client_line(line) == request_


@pytest.mark.parametrize("name", ["", "a b", "a\tb", "a,b", "a\x00", "a\x9b", "x\u2028"]
                         + [f"a{c}b" for c in "!@#$%^&*"])
def test_disallowed_names(name):
    assert not p.is_valid_name(name)
    with pytest.raises(p.ProtocolError):
        p.encode_hello_from(name)


@pytest.mark.parametrize("name", ["alice", "Ünïcødé", "名前", "a-b_c.d", "echobot", "x😀"])
def test_allowed_names(name):
    assert p.is_valid_name(name)


def test_encoders():
    assert p.encode_hello_from("alice") == b"HELLO-FROM alice\n"
    assert p.encode_list() == b"LIST\n"
    assert p.encode_send("bob", "hi there é") == "SEND bob hi there é\n".encode()
    assert p.encode_hello("a") == b"HELLO a\n"
    assert p.encode_list_ok(["echobot", "a"]) == b"LIST-OK echobot,a\n"
    assert p.encode_delivery("a", b"x y") == b"DELIVERY a x y\n"


@pytest.mark.parametrize("body", ["", "a\nb", "a\rb", "a\x00b"])
def test_send_refuses_bodies_that_would_break_the_line(body):
    with pytest.raises(p.ProtocolError):
        p.encode_send("bob", body)


@given(st.binary(max_size=200))
def test_server_parser_never_raises(line):
    p.parse_server_line(line)


@given(st.binary(max_size=200))
def test_client_parser_never_raises(line):
    p.parse_client_line(line)


@given(st.text(min_size=1).filter(lambda s: p.body_problem(s) is None),
       st.text(min_size=1).filter(p.is_valid_name))
def test_send_round_trip(body, name):
    wire = p.encode_send(name, body)
    assert wire.count(b"\n") == 1
    assert p.parse_client_line(wire[:-1]) == p.SendRequest(name, body.encode())
    delivered = p.encode_delivery(name, body.encode())
    assert p.parse_server_line(delivered[:-1]) == p.Delivery(name, body)
