"""The pure client session: login states, pairing and framing with no socket at all."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatsh import protocol as p
from chatsh.session import (
    ClientSession,
    Deliveries,
    Disconnected,
    LineTooLong,
    LoggedIn,
    LoginRefused,
    Replied,
    ScriptLine,
    SessionError,
    State,
    message_request,
    users_request,
)
from chatsh.words import Word


def logged_in(name: str = "me", **options) -> ClientSession:
    session = ClientSession(**options)
    assert session.log_in(name) == f"HELLO-FROM {name}\n".encode()
    assert session.receive_data(f"HELLO {name}\n".encode()) == [LoggedIn(name, name)]
    return session


def test_login_states():
    session = ClientSession()
    assert session.state is State.IDLE
    with pytest.raises(SessionError):
        session.send(users_request())
    session.log_in("me")
    assert session.state is State.LOGGING_IN
    with pytest.raises(SessionError):
        session.log_in("again")
    assert session.receive_data(b"HELL") == []
    assert session.verdict is None
    assert session.receive_data(b"O me\r\n") == [LoggedIn("me", "me")]
    assert session.state is State.LOGGED_IN
    assert session.verdict == LoggedIn("me", "me")


def test_bad_name_is_refused_before_anything_is_sent():
    session = ClientSession()
    with pytest.raises(p.ProtocolError):
        session.log_in("a b")
    assert session.state is State.IDLE


@pytest.mark.parametrize("line, verdict", [
    (b"IN-USE\n", p.InUse()), (b"BUSY\n", p.Busy()),
    (b"BAD-RQST-BODY\n", p.BadRequestBody()), (b"BAD-RQST-HDR\n", p.BadRequestHeader()),
])
def test_refusals_close_the_session(line, verdict):
    session = ClientSession()
    session.log_in("me")
    assert session.receive_data(line) == [LoginRefused("me", verdict)]
    assert session.state is State.CLOSED
    assert session.verdict == LoginRefused("me", verdict)
    assert session.receive_data(b"DELIVERY x late\n") == []


def test_close_during_login_is_a_refusal_without_a_word():
    session = ClientSession()
    session.log_in("me")
    assert session.receive_data(b"") == [LoginRefused("me", None)]


@pytest.mark.parametrize("cut, verdict", [
    (b"IN-USE", p.InUse()), (b"BUSY\r", p.Busy()), (b"BAD-RQST-BODY", p.BadRequestBody())])
def test_a_refusal_cut_short_by_the_close_is_still_a_refusal(cut, verdict):
    session = ClientSession()
    session.log_in("me")
    assert session.receive_data(cut) == []
    assert session.receive_data(b"") == [LoginRefused("me", verdict)]
    assert session.state is State.CLOSED


def test_a_last_reply_cut_short_by_the_close_still_answers_its_request():
    session = ClientSession()
    session.log_in("me")
    session.receive_data(b"HELLO me\n")
    first, second = message_request("bob", "one"), message_request("bob", "two")
    session.send(first)
    session.send(second)
    assert session.receive_data(b"SEND-OK\nBAD-DEST-USER") == [Replied(first[0], p.SendOk())]
    assert session.receive_data(b"") == [Replied(second[0], p.BadDestUser()), Disconnected(())]


def test_lines_before_the_verdict_come_right_after_it():
    session = ClientSession()
    session.log_in("alice")
    assert session.receive_data(b"DELIVERY bob early\nODD line\n") == []
    assert session.receive_data(b"HELLO alice\nDELIVERY bob later\n") == [
        LoggedIn("alice", "alice"), Deliveries([("bob", "early")]), p.UnknownLine("ODD line"),
        Deliveries([("bob", "later")])]


def test_a_different_name_in_hello_is_reported():
    session = ClientSession()
    session.log_in("alice")
    [verdict] = session.receive_data(b"HELLO mallory\n")
    assert verdict == LoggedIn("mallory", "alice")
    assert verdict.renamed


def test_replies_pair_in_order_and_deliveries_stand_alone():
    session = logged_in()
    line = ScriptLine(3, "@bob one")
    first, wire = message_request("bob", "one", line)
    assert session.send((first, wire)) == (b"SEND bob ", b"one", b"\n")
    second = users_request()[0]
    session.send((second, (b"LIST\n",)))
    events = session.receive_data(b"DELIVERY bob hi\nSEND-OK\nLIST-OK echobot,me\n")
    assert events == [Deliveries([("bob", "hi")]), Replied(first, p.SendOk()),
                      Replied(second, p.ListOk(("echobot", "me")))]
    assert events[1].request.line == line
    assert not session.pending


def test_error_reply_answers_the_oldest_request_or_stands_alone():
    session = logged_in()
    request, wire = message_request("bob", "x")
    session.send((request, wire))
    assert session.receive_data(b"BAD-RQST-BODY\nBAD-RQST-HDR\n") == [
        Replied(request, p.BadRequestBody()), p.BadRequestHeader()]


def test_a_stray_reply_cannot_answer_a_request_of_another_kind():
    session = logged_in()
    barrier = users_request(quiet=True)
    session.send(barrier)
    assert session.receive_data(b"SEND-OK\nBAD-DEST-USER\nLIST-OK a\n") == [
        p.SendOk(), p.BadDestUser(), Replied(barrier[0], p.ListOk(("a",)))]
    sent = message_request("bob", "x")
    session.send(sent)
    assert session.receive_data(b"LIST-OK b\nSEND-OK\n") == [
        p.ListOk(("b",)), Replied(sent[0], p.SendOk())]


def test_a_reply_answers_the_oldest_request_of_its_kind_and_passes_over_the_ones_before():
    """A LIST-OK while the oldest request is a SEND the server never answered: it answers
    the LIST behind the SEND, and the SEND is passed over for good (a later SEND-OK is the
    later SEND's); the engine and a disconnect name it first, as the oldest."""
    session = logged_in()
    lost, listed, later = message_request("bob", "1"), users_request(), message_request("bob", "2")
    for outgoing in (lost, listed, later):
        session.send(outgoing)
    assert session.receive_data(b"LIST-OK me\nSEND-OK\n") == [
        Replied(listed[0], p.ListOk(("me",))), Replied(later[0], p.SendOk())]
    assert session.passed_over == [lost[0]] and not session.pending
    again = message_request("bob", "3")
    session.send(again)
    assert session.receive_data(b"BAD-DEST-USER\n") == [Replied(again[0], p.BadDestUser())]
    waiting = users_request()
    session.send(waiting)
    assert session.unanswered() == (lost[0], waiting[0])
    assert session.receive_data(b"") == [Disconnected((lost[0], waiting[0]))]
    assert session.unanswered() == ()  # named once, by the disconnect, passed over or not


def test_a_flood_of_replies_that_answer_nothing_costs_one_look_at_the_waiting_requests():
    """20,000 SENDs waiting and 20,000 LIST-OKs that answer none of them: each LIST-OK
    stands alone, and the waiting requests are looked through once, not once per reply
    (400 million steps, minutes), until a LIST is sent, which the next LIST-OK answers."""
    session = logged_in()
    sends = [message_request("bob", "x") for _ in range(20_000)]
    for outgoing in sends:
        session.send(outgoing)
    started = time.perf_counter()
    events = session.receive_data(b"LIST-OK a\n" * 20_000)
    assert time.perf_counter() - started < 5
    assert events == [p.ListOk(("a",))] * 20_000 and len(session.pending) == 20_000
    listed = users_request()
    session.send(listed)
    assert session.receive_data(b"LIST-OK b\n") == [Replied(listed[0], p.ListOk(("b",)))]
    assert session.passed_over == [request for request, _ in sends]


def test_a_reply_that_comes_out_of_order_still_finds_the_request_it_passed_over():
    """A server that answers a LIST and a SEND the other way round: the SEND-OK passes the
    LIST over, and the LIST-OK that comes next answers it all the same (late), so nothing
    is left unanswered; a reply that answers nothing, waiting or passed over, stands alone."""
    session = logged_in()
    listed, sent = users_request(), message_request("bob", "1")
    session.send(listed)
    session.send(sent)
    assert session.receive_data(b"SEND-OK\nLIST-OK me\nLIST-OK me\n") == [
        Replied(sent[0], p.SendOk()), Replied(listed[0], p.ListOk(("me",))), p.ListOk(("me",))]
    assert session.unanswered() == ()


def test_an_error_reply_answers_the_oldest_request_and_passes_over_none():
    session = logged_in()
    listed, sent = users_request(), message_request("bob", "1")
    session.send(listed)
    session.send(sent)
    assert session.receive_data(b"BAD-RQST-HDR\nSEND-OK\n") == [
        Replied(listed[0], p.BadRequestHeader()), Replied(sent[0], p.SendOk())]
    assert session.passed_over == []


def test_disconnect_names_the_unanswered_requests():
    session = logged_in()
    answered, lost = message_request("bob", "1"), message_request("bob", "2")
    session.send(answered)
    session.send(lost)
    assert session.receive_data(b"SEND-OK\nDELIVERY bob half") == [Replied(answered[0], p.SendOk())]
    assert session.receive_data(b"") == [Disconnected((lost[0],))]
    assert session.state is State.CLOSED
    assert session.receive_data(b"") == []


def test_oversized_lines_are_reported_once_and_skipped():
    session = logged_in(max_line=100)
    events = session.receive_data(b"DELIVERY bob " + b"x" * 300)
    events += session.receive_data(b"x" * 300 + b"\nDELIVERY bob ok\n")
    assert events == [LineTooLong(100), Deliveries([("bob", "ok")])]


def test_an_oversized_line_during_login_waits_for_the_verdict():
    session = ClientSession(max_line=10)
    session.log_in("me")
    assert session.receive_data(b"X" * 50 + b"\nHELLO me\n") == [LoggedIn("me", "me"),
                                                              LineTooLong(10)]


REPLIES = [b"SEND-OK", b"BAD-DEST-USER", b"LIST-OK a,b", b"DELIVERY x y", b"BAD-RQST-HDR",
           b"NOISE"]
ANSWERS = {False: {b"SEND-OK", b"BAD-DEST-USER", b"BAD-RQST-HDR"},
           True: {b"LIST-OK a,b", b"BAD-RQST-HDR"}}
"""What can answer a SEND (False) and a LIST (True)."""


@given(st.lists(st.sampled_from(REPLIES), max_size=30), st.data())
def test_pairing_matches_a_reference_under_any_chunking(replies, data):
    """Whatever the chunking, each reply pairs with the oldest request it can answer; the
    requests before that one are passed over, and a reply no waiting request can take
    answers the oldest passed-over one it can."""
    session = logged_in()
    kinds = data.draw(st.lists(st.booleans(), max_size=30))
    requests = []
    for listing in kinds:
        outgoing = users_request() if listing else message_request("bob", "x")
        session.send(outgoing)
        requests.append(outgoing[0])
    stream = b"".join(reply + b"\n" for reply in replies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    events = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        if end > start:  # an empty read means the server closed
            events += one_by_one(session.receive_data(stream[start:end]))
    expected, waiting, passed_over = [], list(zip(kinds, requests, strict=True)), []
    for reply in replies:
        event = p.parse_server_line(reply)
        answered = [index for index, (listing, _) in enumerate(waiting)
                    if reply in ANSWERS[listing]]
        late = [request for request in passed_over if reply in ANSWERS[request.header is Word.LIST]]
        if answered:
            passed_over += [request for _, request in waiting[:answered[0]]]
            expected.append(Replied(waiting[answered[0]][1], event))
            del waiting[:answered[0] + 1]
        elif late:
            passed_over.remove(late[0])
            expected.append(Replied(late[0], event))
        else:
            expected.append(event)
    assert events == expected
    assert list(session.pending) == [request for _, request in waiting]
    assert session.passed_over == passed_over


def test_requests_carry_their_line_and_quietness():
    line = ScriptLine(7, "!who")
    listed, wire = users_request(line, quiet=True)
    assert (listed.header, listed.line, listed.quiet, wire) == (Word.LIST, line, True, (b"LIST\n",))
    plain = users_request()[0]
    assert (plain.line, plain.quiet) == (None, False)
    sent = message_request("bob", "hi", line)[0]
    assert (sent.header, sent.line, sent.quiet) == (Word.SEND, line, False)


def test_calls_out_of_turn_say_why():
    session = ClientSession()
    with pytest.raises(SessionError, match="cannot send a request while idle"):
        session.send(users_request())
    session.log_in("me")
    with pytest.raises(SessionError, match="cannot log in while logging in"):
        session.log_in("me")


def test_an_abandoned_login_hands_back_what_came():
    session = ClientSession()
    session.log_in("me")
    assert session.receive_data(b"PLEASE WAIT\nDELIVERY x hi\n") == []
    assert session.abandon_login() == [p.UnknownLine("PLEASE WAIT"), Deliveries([("x", "hi")])]
    assert session.state is State.CLOSED
    assert session.abandon_login() == []
    assert session.receive_data(b"HELLO me\n") == []


def one_by_one(events):
    """Events with each message of a :class:`Deliveries` as a :class:`p.Delivery`."""
    out = []
    for event in events:
        if isinstance(event, Deliveries):
            out += [p.Delivery(sender, body) for sender, body in event]
        else:
            out.append(event)
    return out


def test_the_messages_of_one_read_come_as_one_event_until_a_reply_comes_between():
    session = logged_in()
    first, wire = message_request("bob", "one")
    session.send((first, wire))
    events = session.receive_data(b"DELIVERY bob a\nDELIVERY amy b c\r\nSEND-OK\n"
                                  b"DELIVERY bob d\nDELIVERY  no sender\nDELIVERY bob e\n")
    assert events == [Deliveries([("bob", "a"), ("amy", "b c")]), Replied(first, p.SendOk()),
                      Deliveries([("bob", "d")]), p.UnknownLine("DELIVERY  no sender"),
                      Deliveries([("bob", "e")])]


def test_what_is_held_before_the_verdict_is_counted_by_the_memory_it_takes():
    """Short lines held until the verdict take ~190 bytes each, not their 14: ``held``
    counts each line's objects, and consecutive messages are one event."""
    import gc
    import tracemalloc

    lines = [b"DELIVERY u%07d m" % index if index % 2 else b"DELIVERY bob \xf0\x9f\x98\x80"
             for index in range(20_000)]
    data = b"\n".join(lines) + b"\n"
    session = ClientSession()
    session.log_in("me")
    gc.collect()
    tracemalloc.start()
    try:
        assert session.receive_data(data) == []
        taken = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert taken <= session.held <= 3 * taken
    events = session.receive_data(b"HELLO me\n")
    assert len(events) == 2 and len(events[1]) == len(lines)
