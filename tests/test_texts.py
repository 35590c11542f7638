"""The exact strings, and every path by which network text reaches them is escaped."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatsh import texts

HOSTILE = "\x1b]0;t\x07\x1b[2J\r\x08\x9b1m\u202e\x00\x7f"


def plain(fragments):
    return "".join(text for _, text in fragments)


def unsafe(text):
    return [char for char in text
            if unicodedata.category(char) == "Cc" or char in "\u202a\u202b\u202c\u202d\u202e"
            "\u2066\u2067\u2068\u2069\u200e\u200f\u061c"]


NETWORK_TEXT = {
    "logged_in": lambda s: [texts.logged_in(s)],
    "name_in_use": lambda s: [texts.name_in_use(s)],
    "name_disallowed": lambda s: [texts.name_disallowed(s)],
    "delivery sender": lambda s: [texts.delivery(s, "body")],
    "delivery body": lambda s: [texts.delivery("bob", s)],
    "delivery mention": lambda s: [texts.delivery(s, s, highlight=True)],
    "user_list": lambda s: texts.user_list(["echobot", s]),
    "unknown_line": lambda s: [texts.unknown_line(s)],
    "renamed": lambda s: [texts.renamed(s, s)],
}


@pytest.mark.parametrize("render", NETWORK_TEXT.values(), ids=NETWORK_TEXT.keys())
def test_network_text_is_escaped_in_every_line(render):
    lines = render(HOSTILE)
    for line in lines:
        assert unsafe(plain(line)) == []
    assert any("^[]0;t^G^[[2J^M^H<9b>1m<U+202E>^@^?" in plain(line) for line in lines)


@given(st.text())
def test_any_sender_and_body_print_safe(text):
    assert unsafe(plain(texts.delivery(text, text))) == []
    assert unsafe(plain(texts.unknown_line(text))) == []


@pytest.mark.parametrize("fragments, line", [
    (lambda: texts.logged_in("alice"), "Successfully logged in as alice!"),
    (lambda: texts.name_in_use("bob"), "Cannot log in as bob. That username is already in use."),
    (lambda: texts.name_disallowed("!who"),
     "Cannot log in as !who. That username contains disallowed characters."),
    (lambda: texts.delivery("bob", "hi there"), "From bob: hi there"),
    (lambda: texts.renamed("alice", "mallory"),
     "The server logged you in as mallory, not as alice."),
])
def test_exact_lines(fragments, line):
    assert plain(fragments()) == line


def test_user_list_lines():
    assert [plain(line) for line in texts.user_list(("echobot", "me"))] == [
        "There are 2 online users:", "echobot", "me"]


ESC = "class:escape"


D_STYLE = "class:sender class:sender-0"
"""The colour of a sender called ``d``."""


@pytest.mark.parametrize("fragments, expected", [
    (lambda: texts.logged_in("a\x1b"), [("class:system", "Successfully logged in as "),
                                ("class:self", "a"), (f"class:self {ESC}", "^["),
                                ("class:system", "!")]),
    (lambda: texts.name_in_use("b"), [("class:error", "Cannot log in as "), ("class:error", "b"),
                              ("class:error", ". That username is already in use.")]),
    (lambda: texts.name_disallowed("c"), [("class:error", "Cannot log in as "),
                                          ("class:error", "c"),
                                  ("class:error",
                                   ". That username contains disallowed characters.")]),
    (lambda: texts.delivery("d", "hi\x07"), [("class:from", "From "), (D_STYLE, "d"),
                                     ("class:from", ": "), ("class:body", "hi"),
                                     (f"class:body {ESC}", "^G")]),
    (lambda: texts.delivery("d", "e", highlight=True), [("class:from", "From "),
                                                        (D_STYLE, "d"),
                                                ("class:from", ": "), ("class:mention", "e")]),
    (lambda: texts.unknown_line("\x1bX"), [("class:error", "Unknown message from the server: "),
                                   (f"class:error {ESC}", "^["), ("class:error", "X")]),
    (lambda: texts.renamed("a", "m"), [("class:error", "The server logged you in as "),
                               ("class:error", "m"), ("class:error", ", not as "),
                               ("class:error", "a"), ("class:error", ".")]),
    (lambda: texts.system("s"), [("class:system", "s")]),
    (lambda: texts.error("e"), [("class:error", "e")]),
])
def test_styles_of_each_line(fragments, expected):
    assert fragments() == expected


def test_each_sender_keeps_one_colour_and_senders_differ():
    assert texts.sender_style("bob") == texts.sender_style("bob") == (
        "class:sender class:sender-2")  # the same in every run: a checksum, not hash()
    colours = {texts.sender_style(name) for name in ("ann", "bob", "carol", "dave", "eve",
                                                     "fay", "gus", "hal")}
    assert len(colours) >= 4
    assert all(style.startswith("class:sender class:sender-") for style in colours)


def test_every_style_is_in_the_stylesheet():
    from chatsh.ui.style import OUTPUT_CLASSES

    lines = [texts.logged_in("\x1b"), texts.name_in_use("\x1b"), texts.name_disallowed("\x1b"),
             texts.delivery("\x1b", "\x1b"), texts.delivery("a", "b", highlight=True),
             texts.unknown_line("\x1b"), texts.renamed("\x1b", "\x1b"),
             *texts.user_list(["\x1b"])]
    used = {word for line in lines for style, _ in line for word in style.split()}
    assert used and all(word.startswith("class:") for word in used)
    assert {word.removeprefix("class:") for word in used} <= set(OUTPUT_CLASSES)


def test_user_list_styles():
    assert texts.user_list(("a\x1b",)) == [
        [("class:system", "There are 1 online users:")],
        [("class:user", "a"), (f"class:user {ESC}", "^[")]]


@pytest.mark.parametrize("name, shown", [
    ("echo\u200bbot", "echo<U+200B>bot"), ("alice\u2060", "alice<U+2060>"),
    ("bob\ufeff", "bob<U+FEFF>"), ("a\u00a0b", "a<U+00A0>b"), ("x\ue000", "x<U+E000>"),
    ("名前", "名前"),
])
def test_invisible_characters_in_names_are_shown(name, shown):
    family = "👩\u200d👩"  # a body keeps its joiners
    assert plain(texts.delivery(name, family)) == f"From {shown}: {family}"
    assert plain(texts.user_list([name])[1]) == shown
    assert plain(texts.logged_in(name)) == f"Successfully logged in as {shown}!"


@pytest.mark.parametrize(("body", "named"), [
    ("hi alice", True), ("Alice, look", True), ("@alice!", True), ("alice's turn", True),
    ("malice aforethought", False), ("alice2 is someone else", False), ("", False),
])
def test_a_mention_is_the_name_as_a_whole_word(body, named):
    assert texts.mentions("alice", body) is named


def test_no_name_no_mention():
    assert not texts.mentions("", "anything")


@given(st.text(alphabet="aAsSkKſKßσςΣµμé-_ .", max_size=6),
       st.text(alphabet="aAsSkKſKßσςΣµμé-_ .!x", max_size=20))
def test_passing_over_bodies_without_the_name_misses_no_mention(name, body):
    import re

    whole_word = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
    assert texts.mentions(name, body) == (bool(name) and whole_word.search(body) is not None)


@pytest.mark.parametrize("name, line", [
    ("tab\there", "U+0009 is not allowed in a name."),
    ("esc\x1b[2J", "U+001B is not allowed in a name."),
    ("zero\u200bwidth\u202e", "U+200B (ZERO WIDTH SPACE) and U+202E (RIGHT-TO-LEFT OVERRIDE) "
     "are not allowed in a name."),
    ("!@#$%^&*", "'!', '@', '#', '$', '%' and 3 more are not allowed in a name."),
    ("a##b##", "'#' is not allowed in a name."),
])
def test_the_line_after_ri5_names_each_forbidden_character_once_and_safely(name, line):
    shown = plain(texts.name_rule(name, "unused"))
    assert shown == line
    assert unsafe(shown) == []


@given(st.text(min_size=1))
def test_the_line_after_ri5_prints_safe_whatever_the_name(name):
    assert unsafe(plain(texts.name_rule(name, "a name cannot be empty"))) == []
