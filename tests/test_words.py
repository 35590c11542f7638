"""The protocol's one table: every word the client, the server and conform use is read
from it, and a version differs from another by its spelling alone."""

import pytest

from chatsh import protocol as p
from chatsh.session import ClientSession, Replied, message_request, users_request
from chatsh.words import ANSWERS, CURRENT, OLDER, WITH_BODY, Word

SERVER_WORDS = [word for word in Word if word not in ANSWERS]
"""The words a server sends: replies, and DELIVERY at any moment."""


def test_the_current_spelling_is_the_specs():
    assert {word: CURRENT.spelling[word] for word in Word} == {
        Word.HELLO_FROM: b"HELLO-FROM", Word.LIST: b"LIST", Word.SEND: b"SEND",
        Word.HELLO: b"HELLO", Word.IN_USE: b"IN-USE", Word.BUSY: b"BUSY",
        Word.LIST_OK: b"LIST-OK", Word.SEND_OK: b"SEND-OK",
        Word.BAD_DEST_USER: b"BAD-DEST-USER", Word.DELIVERY: b"DELIVERY",
        Word.BAD_RQST_HDR: b"BAD-RQST-HDR", Word.BAD_RQST_BODY: b"BAD-RQST-BODY"}


def test_the_older_version_differs_by_who_and_unknown_alone():
    changed = {word: OLDER.spelling[word] for word in Word
               if OLDER.spelling[word] != CURRENT.spelling[word]}
    assert changed == {Word.LIST: b"WHO", Word.LIST_OK: b"WHO-OK",
                       Word.BAD_DEST_USER: b"UNKNOWN"}
    assert OLDER.word(b"WHO-OK") is Word.LIST_OK and OLDER.word(b"LIST") is None


@pytest.mark.parametrize("word", SERVER_WORDS, ids=lambda word: word.name)
def test_each_server_word_parses_to_the_event_the_table_gives_it(word):
    line = CURRENT.spelling[word] + (b" bob hi" if word in WITH_BODY else b"")
    assert type(p.parse_server_line(line)) is p.EVENTS[word]


@pytest.mark.parametrize("word", list(ANSWERS), ids=lambda word: word.name)
def test_each_request_encodes_and_parses_as_the_table_spells_it(word):
    encoded = {Word.HELLO_FROM: p.encode_hello_from("bob"), Word.LIST: p.encode_list(),
               Word.SEND: p.encode_send("bob", "hi")}[word]
    assert encoded.split(b" ")[0].rstrip(b"\n") == CURRENT.spelling[word]
    assert type(p.parse_client_line(encoded.rstrip(b"\n"))) is p.REQUESTS[word]


@pytest.mark.parametrize("word", [Word.LIST, Word.SEND], ids=lambda word: word.name)
def test_the_session_pairs_a_request_with_exactly_the_replies_that_answer_it(word):
    for reply in SERVER_WORDS:
        session = ClientSession()
        session.log_in("me")
        session.receive_data(b"HELLO me\n")
        session.send(users_request() if word is Word.LIST else message_request("bob", "hi"))
        body = b" bob hi" if reply in WITH_BODY else b""
        events = session.receive_data(CURRENT.line(reply, body))
        paired = any(isinstance(event, Replied) for event in events)
        assert paired == (reply in ANSWERS[word]), reply
