import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chatsh import names
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
    (b"SEND bob a\rb", p.MalformedBody()),
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
    assert not names.is_valid_name(name)
    with pytest.raises(p.ProtocolError):
        p.encode_hello_from(name)


@pytest.mark.parametrize("name", ["alice", "Ünïcødé", "名前", "a-b_c.d", "echobot", "x😀"])
def test_allowed_names(name):
    assert names.is_valid_name(name)


@pytest.mark.parametrize("name", [f"a{c}b" for c in "!@#$%^&*"] + ["!@#$%^&*"])
def test_a_message_goes_to_names_some_servers_allow(name):
    """The course's reference server logs in names with ``! @ # $ % ^ & *``; a message can
    be sent to them (the server says whether the user exists), long or not."""
    assert names.destination_problem(name) is None
    assert p.encode_send(name, "hi") == f"SEND {name} hi\n".encode()
    assert b"".join(p.encode_send_view(name, memoryview(b"x"))) == f"SEND {name} x\n".encode()


@pytest.mark.parametrize("name", ["", "a b", "a\tb", "a,b", "a\x00", "a\x9b", "x\u2028",
                                  "a\u200bb", "a" * 65])
def test_names_no_message_goes_to(name):
    assert names.destination_problem(name) is not None
    with pytest.raises(p.ProtocolError):
        p.encode_send(name, "hi")


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


HEADERS = [b"HELLO", b"IN-USE", b"BUSY", b"LIST-OK", b"SEND-OK", b"BAD-DEST-USER", b"DELIVERY",
           b"BAD-RQST-HDR", b"BAD-RQST-BODY", b"HELLO-FROM", b"LIST", b"SEND", b"NOPE"]
rests = st.text(alphabet="ab é,!\x1b\r\x00", max_size=30).map(str.encode) | st.binary(
    max_size=60)
lines = st.builds(lambda header, gap, rest: header + gap + rest, st.sampled_from(HEADERS),
                  st.sampled_from([b"", b" ", b"  "]), rests) | st.binary(max_size=100) | st.builds(
    lambda header, name, body: header + b" " + name + b" " + body,
    st.sampled_from([b"SEND", b"DELIVERY"]), st.sampled_from([b"bob", b"b,b", b"\xff"]), rests)


@given(lines)
@example(b"DELIVERY bob hi there")
@example(b"LIST-OK a,,b")
@example(b"HELLO x\r")
@example(b"UNKNOWN")  # the older version's BAD-DEST-USER
def test_server_parser_returns_an_event_that_keeps_the_line(line):
    event = p.parse_server_line(line)
    text = line.removesuffix(b"\r").decode("utf-8", "replace")
    if isinstance(event, p.UnknownLine):
        assert event.text == text
    elif isinstance(event, p.Delivery):
        assert text == f"DELIVERY {event.sender} {event.body}"
        assert event.sender and " " not in event.sender
    elif isinstance(event, p.ListOk):
        assert text.startswith("LIST-OK")
        assert all(name and "," not in name for name in event.names)
    elif isinstance(event, p.Hello):
        assert text == f"HELLO {event.name}"
    else:
        assert p.parse_server_line(text.encode()) == event
        assert text in {"IN-USE", "BUSY", "SEND-OK", "BAD-DEST-USER", "UNKNOWN",
                        "BAD-RQST-HDR", "BAD-RQST-BODY"}


framed_lines = lines.map(lambda line: line.replace(b"\n", b" "))
"""Lines as the framer hands them over: never holding a newline."""


@given(framed_lines)
@example(b"SEND bob hi there")
@example(b"SEND ' \r")
@example(b"HELLO-FROM al")
@example(b"LIST\r")
def test_client_parser_accepts_only_well_formed_requests(line):
    request = p.parse_client_line(line)
    line = line.removesuffix(b"\r")
    if isinstance(request, p.HelloFrom):
        assert line == b"HELLO-FROM " + request.name.encode() and names.is_valid_name(request.name)
    elif isinstance(request, p.ListRequest):
        assert line == b"LIST"
    elif isinstance(request, p.SendRequest):
        assert line == b"SEND " + request.destination.encode() + b" " + request.body
        assert names.is_valid_name(request.destination) and request.body
        assert names.body_problem(request.body.decode()) is None
    elif isinstance(request, p.MalformedHeader):
        assert not line.startswith((b"HELLO-FROM ", b"SEND ")) and line.split(b" ")[0] not in {
            b"LIST", b"SEND", b"HELLO-FROM"}
    else:
        assert isinstance(request, p.MalformedBody)


@given(st.text(min_size=1).filter(lambda s: names.body_problem(s) is None),
       st.text(min_size=1).filter(names.is_valid_name))
def test_send_round_trip(body, name):
    wire = p.encode_send(name, body)
    assert wire.count(b"\n") == 1
    assert p.parse_client_line(wire[:-1]) == p.SendRequest(name, body.encode())
    delivered = p.encode_delivery(name, body.encode())
    assert p.parse_server_line(delivered[:-1]) == p.Delivery(name, body)
    assert p.encode_checked_send(name, body) == p.encode_send_parts(name, body)


@given(st.text())
@example("\x01\x7f\u200b tab\there")
@example("ok\r")
def test_a_body_is_refused_only_for_emptiness_or_a_line_end_or_nul(body):
    assert (names.body_problem(body) is None) == (body != "" and not set(body) & set("\n\r\0"))


@pytest.mark.parametrize("name", [
    "echo\u200bbot", "alice\u2060", "bob\ufeff", "a\u00a0b", "a\u3000b", "x\ue000", "rtl\u202e",
    "zw\u200dj", "a" * 65, "\U000e0041tag",
])
def test_invisible_and_overlong_names_are_refused(name):
    assert names.name_problem(name) is not None
    assert isinstance(p.parse_client_line(f"HELLO-FROM {name}".encode()), p.MalformedBody)


@pytest.mark.parametrize("name", ["a" * 64, "名前", "Zoë", "José", "ø", "日本語のなまえ"])
def test_names_in_any_script_are_allowed(name):
    assert names.name_problem(name) is None


@pytest.mark.parametrize("one, other", [
    ("bob", "BOB"), ("echobot", "\u0435chobot"), ("echobot", "ЕСНОВОТ"), ("bob", "Ｂｏｂ"),
    ("paypal", "\u0440\u0430ypal"), ("ko", "\u03bao"), ("ﬁle", "file"),
])
def test_look_alike_names_share_a_skeleton(one, other):
    assert names.name_skeleton(one) == names.name_skeleton(other)


@pytest.mark.parametrize("one, other", [("bob", "rob"), ("名前", "名"), ("ana", "anna")])
def test_different_names_have_different_skeletons(one, other):
    assert names.name_skeleton(one) != names.name_skeleton(other)


def test_oversized_raw_names_never_enter_the_name_cache():
    before = p._cached_name.cache_info().currsize
    for index in range(50):
        p.parse_client_line(b"HELLO-FROM " + b"n" * 300 + str(index).encode())
        p.parse_client_line(b"SEND " + b"d" * 300 + str(index).encode() + b" hi")
    assert p._cached_name.cache_info().currsize == before


@pytest.mark.parametrize("name, problem", [
    ("", "a name cannot be empty"),
    ("a!b", "a name cannot contain '!'"),
    ("a b", "a name cannot contain white space"),
    ("a\tb", "a name cannot contain white space"),
    ("a\x01b", "a name cannot contain control characters"),
    ("a\u200bb", "a name cannot contain invisible, format or private-use characters"),
    ("n" * 65, "a name can have at most 64 characters"),
])
def test_name_problems_say_what_is_wrong(name, problem):
    assert names.name_problem(name) == problem


@pytest.mark.parametrize("body, problem", [
    ("", "a message cannot be empty"), ("a\nb", "a message cannot contain '\\n'"),
    ("a\rb", "a message cannot contain '\\r'"), ("a\0b", "a message cannot contain '\\x00'"),
    ("fine", None), ("XX", None),
])
def test_body_problems_say_what_is_wrong(body, problem):
    assert names.body_problem(body) == problem


def test_encoders_refuse_with_the_reason():
    with pytest.raises(p.ProtocolError, match="^a name cannot contain white space$"):
        p.encode_hello_from("a b")
    with pytest.raises(p.ProtocolError, match="^a message cannot be empty$"):
        p.encode_send("bob", "")


@pytest.mark.parametrize("line, event", [
    (b"DELIVERY a b c", p.Delivery("a", "b c")),
    (b"DELIVERY abcdefghij x", p.Delivery("abcdefghij", "x")),
    (b"LIST-OK a b", p.ListOk(("a b",))),
    (b"LIST-OK", p.ListOk(())),
    (b"HELLO a b", p.Hello("a b")),
])
def test_server_line_edges(line, event):
    assert p.parse_server_line(line) == event


def test_a_name_of_the_most_bytes_is_still_checked():
    longest = "é" * 64  # 128 bytes, within the cap
    assert p.parse_client_line(f"HELLO-FROM {longest}".encode()) == p.HelloFrom(longest)
    at_cap = "\U0001f600" * 64  # 256 bytes: 64 characters, at the byte cap
    assert p.parse_client_line(f"HELLO-FROM {at_cap}".encode()) == p.HelloFrom(at_cap)


SERVER_HEADS = (b"", b"DELIVERY ", b"DELIVERY", b"HELLO ", b"LIST-OK ", b"SEND-OK", b"IN-USE",
                b"BUSY", b"BAD-DEST-USER", b"BAD-RQST-HDR", b"BAD-RQST-BODY")


@given(st.tuples(st.sampled_from(SERVER_HEADS), st.binary(max_size=40)).map(b"".join))
@example(b"DELIVERY bob hi")
def test_any_long_line_parses_as_its_bytes_do(line):
    """A long line comes from the framer as a bytearray and is taken apart in place; a
    DELIVERY whose body is printable ASCII may then stay the raw bytes it came in. Decoded,
    that is the event the bytes path gives; any other line parses as its bytes do."""
    event = p.parse_server_line(bytearray(line))
    if isinstance(event, p.RawDelivery):
        assert line.startswith(b"DELIVERY ")
        event = event.decoded()
    assert event == p.parse_server_line(line)


def test_a_long_printable_body_stays_the_bytes_it_came_in():
    line = bytearray(b"DELIVERY bob " + b"z~ " * 100_000 + b"\r")
    event = p.parse_server_line(line)
    assert isinstance(event, p.RawDelivery)
    assert event.sender == "bob"
    assert event.body is line  # cut down in place, not copied
    assert event.body == b"z~ " * 100_000
    for hostile in (b"\x1b[2J", b"\x07", b"\x7f", "é".encode()):
        mixed = p.parse_server_line(bytearray(b"DELIVERY bob x" + hostile + b"y"))
        assert mixed == p.Delivery("bob", ("x" + hostile.decode() + "y"))


def test_a_delivery_line_past_the_short_length():
    body = "é" * (p.SHORT_LINE // 2) + " end"
    line = bytearray(b"DELIVERY bob " + body.encode())
    assert len(line) > p.SHORT_LINE
    assert p.parse_server_line(line) == p.Delivery("bob", body)
    assert p.parse_server_line(bytearray(b"DELIVERY  " + b"x" * p.SHORT_LINE)) == (
        p.UnknownLine("DELIVERY  " + "x" * p.SHORT_LINE))
