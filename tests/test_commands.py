import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatsh.commands import (
    COMMANDS,
    MOST_ADDRESSED,
    CommandInput,
    InputError,
    MultiSendInput,
    SendInput,
    help_lines,
    parse_input,
)


@pytest.mark.parametrize("line, parsed", [
    ("@bob hi", SendInput("bob", "hi")),
    ("@bob hi  there ", SendInput("bob", "hi  there ")),
    ("  @bob   spaced  ", SendInput("bob", "  spaced  ")),
    ("@bob \tindented", SendInput("bob", "\tindented")),
    ("@名前 こんにちは", SendInput("名前", "こんにちは")),
    ("!who", CommandInput(COMMANDS["who"])),
    ("@r#1 hi", SendInput("r#1", "hi")),  # a name the course's reference server allows
    ("@a@b,x!y*z both", MultiSendInput(("a@b", "x!y*z"), "both")),
    ("!to r#1", CommandInput(COMMANDS["to"], "r#1")),
    ("!quit", CommandInput(COMMANDS["quit"])),
    ("!help ", CommandInput(COMMANDS["help"])),
])
def test_valid_input(line, parsed):
    assert parse_input(line) == parsed


@pytest.mark.parametrize("line, fragment", [
    ("@bob", "Empty message"),
    ("@bob    ", "Empty message"),
    ("@ hi", "Say who"),
    ("@b," + "c" * 65 + " hi", "is not a valid user name: a name can have at most 64"),
    ("@b,c\u200brol hi", "is not a valid user name: a name cannot contain invisible"),
    ("@bob,,carol hi", "A name is missing in @bob,,carol"),
    ("@bob, how are you?", "A name is missing in @bob,"),
    (",bob hi", "Start a message with @"),
    ("@bob,carol", "Empty message: type @bob,carol <message>."),
    ("hello", "Start a message with @"),
    ("!nope", "Unknown command !nope"),
    ("!who now", "takes no arguments"),
    ("@bob a\x00b", "Not sent"),
])
def test_rejected_input(line, fragment):
    parsed = parse_input(line)
    assert isinstance(parsed, InputError)
    assert fragment in parsed.message
    assert "\n" not in parsed.message


@pytest.mark.parametrize("line, parsed", [
    ("@bob,carol hi all", MultiSendInput(("bob", "carol"), "hi all")),
    ("  @bob,carol,dave  spaced", MultiSendInput(("bob", "carol", "dave"), " spaced")),
    ("@bob,carol,bob once each", MultiSendInput(("bob", "carol"), "once each")),
    ("@bob,bob just bob", SendInput("bob", "just bob")),
])
def test_a_message_to_several_names(line, parsed):
    """Names never hold a comma, so ``@a,b text`` can only mean "to a and to b"."""
    assert parse_input(line) == parsed
    assert parse_input(line, partner="zed") == parsed


@pytest.mark.parametrize("line, parsed", [
    ("hello there ", SendInput("bob", "hello there ")),
    ("  indented", SendInput("bob", "  indented")),
    ("@carol hi", SendInput("carol", "hi")),  # an @ line still goes where it says
    ("!who", CommandInput(COMMANDS["who"])),
    ("!to", CommandInput(COMMANDS["to"], None)),
    ("!to @dave", CommandInput(COMMANDS["to"], "dave")),
    ("   ", InputError("Empty message: type @bob <message>.")),
    ("!to b,b", InputError("b,b is not a valid user name: names contain none of "
                           "! @ # $ % ^ & * , or spaces.")),
])
def test_lines_without_at_go_to_the_partner(line, parsed):
    result = parse_input(line, partner="bob")
    if isinstance(parsed, InputError) and isinstance(result, InputError):
        assert result.message.split(":")[0] == parsed.message.split(":")[0]
    else:
        assert result == parsed


def test_help_lists_every_command():
    text = "\n".join(help_lines())
    assert "Keys:" not in text  # a script has none
    for name, command in COMMANDS.items():
        assert (f"!{name}" in text) is not command.shell_only
    assert "@<user> <message>" in text


def test_help_in_the_shell_lists_its_commands_and_keys_not_the_script_ones():
    text = "\n".join(help_lines(scripted=False))
    assert "!who" in text and "!quit" in text
    assert "!last [USER] [N]" in text and "!search TEXT" in text and "!mute USER" in text
    assert "!expect" not in text and "!wait" not in text
    assert "Keys:" in text and "Ctrl-Y brings it back" in text and "Tab" in text


def test_script_lines_read_as_bytes_are_numbered_and_kept_as_text_would_be():
    import io

    from chatsh.modes.script_source import LONG_LINE, read_lines

    long_ascii = b"@bob " + b"x" * LONG_LINE
    long_other = "@bob é".encode() + b"y" * LONG_LINE
    data = (b"\xef\xbb\xbfann\r\n\n  # note\n@bob caf\xc3\xa9 \xff\r\n" + long_ascii + b"\r\n"
            + long_other + b"\n" + b" " * LONG_LINE + b"\n#" + b"z" * LONG_LINE + b"\n!quit")
    lines = list(read_lines(io.BytesIO(data)))
    assert [number for number, _ in lines] == [1, 4, 5, 6, 9]
    assert lines[0][1] == "ann" and lines[1][1] == "@bob café \ufffd" and lines[4][1] == "!quit"
    assert type(lines[2][1]) is bytearray and lines[2][1] == long_ascii
    assert lines[3][1] == long_other.decode()


def test_a_long_message_is_parsed_from_its_head():
    from chatsh.commands import parse_long_message

    body = b"x" * 5000
    assert parse_long_message(bytearray(b"  @bob  " + body)) == ("bob", 7)
    assert parse_long_message(bytearray(b"plain " + body), partner="amy") == ("amy", 0)
    assert parse_long_message(bytearray(b"@r#1 " + body)) == ("r#1", 5)
    for refused in (b"plain " + body, b"@b\x01b " + body, b"@bob " + body + b"\0",
                    b"@bob " + b" " * 5000, b"!who " + body, b"@" + body):
        assert parse_long_message(bytearray(refused)) is None


@given(st.lists(st.sampled_from([*"ab!@#,*é \t\r\0\x1b\u200b~\"'", "x" * 70]), max_size=12))
def test_the_quick_reading_of_a_message_agrees_with_the_full_one(pieces):
    """Most lines are read by one pattern; any line must parse as the full parser says."""
    from chatsh.commands import _parse_message

    rest = "".join(pieces)
    for line in (f"@{rest}", f"  @{rest}", f"@bob {rest}", f"@{rest} hi"):
        assert parse_input(line) == _parse_message(line.lstrip())


@pytest.mark.parametrize("line, hint", [
    ("/msg bob hi there", "Not a chatsh command: @bob hi there does that here."),
    ("/msg bob", "Not a chatsh command: @bob <message> does that here."),
    ("/MSG bob  two  spaces \x1b[2J" + "x" * 80,
     "Not a chatsh command: @bob two  spaces ^[[2J" + "x" * 44 + "... does that here."),
    ("/msg", "Not a chatsh command: @<user> <message> does that here."),
    ("/msg bob,carol hi", "Not a chatsh command: @bob,carol hi does that here."),
    ("/msg b,,c hi", "Not a chatsh command: @<user> <message> does that here."),
    ("/query b,c", "Not a chatsh command: !to <user> does that here."),
    ("/msg b!b hi", "Not a chatsh command: @b!b hi does that here."),
    ("/query bob", "Not a chatsh command: !to bob does that here."),
    ("/query bob hi", "Not a chatsh command: !to bob does that here."),  # /msg's alone
    ("/quit bye all", "Not a chatsh command: !quit (or Ctrl-D) does that here."),
    ("  /QUERY", "Not a chatsh command: !to <user> does that here."),
    ("/quit", "Not a chatsh command: !quit (or Ctrl-D) does that here."),
    ("/who", "Not a chatsh command: !who does that here."),
])
def test_irc_commands_get_a_hint_with_the_chatsh_form(line, hint):
    assert parse_input(line) == InputError(hint)


def test_an_irc_command_with_a_partner_is_hinted_not_sent():
    """In !to mode, a reflexive /quit would go to the partner as a message."""
    assert parse_input("/quit", partner="bob") == InputError(
        "Not a chatsh command: !quit (or Ctrl-D) does that here (to send it to bob: "
        "@bob /quit).")
    long = parse_input("/quit " + "x" * 100_000 + "\x1b", partner="bob")
    assert isinstance(long, InputError) and len(long.message) < 200
    assert "\x1b" not in parse_input("/quit \x1b[2J", partner="bob").message
    assert parse_input("/shrug", partner="bob") == SendInput("bob", "/shrug")
    assert isinstance(parse_input("/shrug"), InputError)


@pytest.mark.parametrize(("line", "parsed"), [
    ("!last", (None, 20)), ("!last bob", ("bob", 20)), ("!last @bob 5", ("bob", 5)),
    ("!last 7", (None, 7)), ("!last @42", ("42", 20)), ("!last 42 3", ("42", 3)),
    ("!last  bob   1000 ", ("bob", 1000)),
])
def test_last_takes_a_name_and_a_count_each_optional(line, parsed):
    result = parse_input(line)
    assert isinstance(result, CommandInput) and result.argument == parsed


@pytest.mark.parametrize(("line", "said"), [
    ("!last 0", "not a number of messages from 1 to 1000"),
    ("!last bob 1001", "not a number of messages from 1 to 1000"),
    ("!last bob ５", "not a number of messages"),
    ("!last bob 5 6", "a name and a number at most"),
    ("!last b,c", "not a valid user name"),
    ("!search   ", "Say what to look for"),
    ("!search \x00", "Say what to look for"),
    ("!search \x00\x1b \x7f", "control characters"),
    ("!search " + " ".join(f"w{n}" for n in range(33)), "at most 32 different words"),
    ("!mute", "Say whose"),
    ("!unmute a b", "not a valid user name"),
])
def test_store_commands_refuse_what_they_cannot_take_in_one_line(line, said):
    result = parse_input(line)
    assert isinstance(result, InputError) and said in result.message
    assert "\n" not in result.message


def test_search_takes_32_different_words_a_word_said_again_counts_once():
    words = " ".join(f"w{n}" for n in range(32))
    assert parse_input(f"!search {words}") == CommandInput(COMMANDS["search"], words)
    repeated = " ".join(["a", "A"] * 5000 + ["b"] * 31)
    assert parse_input(f"!search {repeated}") == CommandInput(COMMANDS["search"], repeated)


def test_one_line_writes_to_at_most_20_names_else_sends_nothing():
    """@a,b,c,... with 1,000 names sent 1,000 SENDs, and printed 1,000 lines when they
    were not online; as an IRC server answers too many targets: one line, nothing sent."""
    twenty = tuple(f"u{number}" for number in range(MOST_ADDRESSED))
    assert parse_input(f"@{','.join(twenty)} hi") == MultiSendInput(twenty, "hi")
    many = ",".join(f"u{number}" for number in range(1000))
    refused = parse_input(f"@{many} hi")
    assert refused == InputError(f"Not sent: the line names 1000 users; one line writes to "
                                 f"{MOST_ADDRESSED} at most.")
    assert isinstance(parse_input(f"@{many},u1 hi"), InputError)
    assert parse_input(f"@{','.join(twenty)},u0,u1 hi") == MultiSendInput(twenty, "hi")
