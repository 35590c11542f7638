"""The protocol's one table: every word the client, the server and conform use is read
from it, and a version differs from another by its spelling alone."""

import ast
from pathlib import Path

import pytest

import chatsh
from chatsh import protocol as p
from chatsh.session import ClientSession, Replied, message_request, users_request
from chatsh.words import ANSWERS, CURRENT, OLDER, OLDER_DIFFERENCES, WITH_BODY, Word

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


@pytest.mark.parametrize("word", [word for word in SERVER_WORDS if word not in WITH_BODY],
                         ids=lambda word: word.name)
def test_a_reply_of_one_word_is_understood_as_either_version_spells_it(word):
    assert p.parse_server_line(OLDER.spelling[word]) == p.parse_server_line(
        CURRENT.spelling[word])
    assert type(p.parse_server_line(OLDER.spelling[word])) is p.EVENTS[word]


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


def test_the_table_is_consistent():
    """Each request is a word a client sends, each reply one a server sends; every word a
    server sends answers some request but DELIVERY, which comes at any moment; each event
    names the word it is parsed from."""
    replies = frozenset().union(*ANSWERS.values())
    assert set(ANSWERS) == set(p.REQUESTS) and not replies & set(ANSWERS)
    assert set(SERVER_WORDS) == set(p.EVENTS) == replies | {Word.DELIVERY}
    assert all(p.EVENTS[word].word is word for word in p.EVENTS)
    assert WITH_BODY <= set(Word)
    assert len(set(CURRENT.spelling.values())) == len(OLDER.spelling.values()) == len(Word)


def test_the_older_version_differs_by_its_second_table_alone():
    """SPEC's older version: WHO for LIST, WHO-OK for LIST-OK, UNKNOWN for BAD-DEST-USER;
    the same replies answer the same requests (the table of answers is one)."""
    assert OLDER_DIFFERENCES == {Word.LIST: b"WHO", Word.LIST_OK: b"WHO-OK",
                                 Word.BAD_DEST_USER: b"UNKNOWN"}
    assert OLDER.spelling == {**CURRENT.spelling, **OLDER_DIFFERENCES}
    assert all(OLDER.word(OLDER.spelling[word]) is word for word in Word)


SPELLINGS = {*CURRENT.spelling.values(), *OLDER.spelling.values()}


def spelt_lines(path: Path) -> list[str]:
    """Where ``path`` spells a protocol line itself: a bytes literal, or a text literal it
    encodes, whose first word is a word of either version (``b"SEND-OK"``,
    ``f"HELLO-FROM {name}\\n".encode()``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            text = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "encode"
              and isinstance(node.func.value, ast.Constant | ast.JoinedStr)):
            literal = node.func.value
            first = literal if isinstance(literal, ast.Constant) else literal.values[0]
            if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
                continue
            text = first.value.encode()
        else:
            continue
        if text.replace(b"\n", b" ").split(b" ")[0] in SPELLINGS:
            found.append(f"{path.name}:{node.lineno}: {text[:30]!r}")
    return found


def test_no_module_but_the_table_spells_a_protocol_line():
    """The parsers, encoders, the session, the server and conform read the words from
    the table: a word respelt, or a version added, changes chatsh/words.py alone."""
    root = Path(chatsh.__file__).parent
    found = [place for path in sorted(root.rglob("*.py")) if path.name != "words.py"
             for place in spelt_lines(path)]
    assert found == []


def test_the_search_for_spelt_lines_finds_them(tmp_path):
    module = tmp_path / "spells.py"
    module.write_text('A = b"SEND-OK"\nB = f"HELLO-FROM {A}\\n".encode()\nC = b"WHO\\n"\n'
                      'D = "LIST-OK names the user"\nE = b"SENDER"\n')
    assert [place.split(":")[1] for place in spelt_lines(module)] == ["1", "2", "3"]
