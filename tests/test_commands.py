import pytest

from chatsh.commands import COMMANDS, CommandInput, InputError, SendInput, help_lines, parse_input


@pytest.mark.parametrize("line, parsed", [
    ("@bob hi", SendInput("bob", "hi")),
    ("@bob hi  there ", SendInput("bob", "hi  there ")),
    ("  @bob   spaced  ", SendInput("bob", "  spaced  ")),
    ("@bob \tindented", SendInput("bob", "\tindented")),
    ("@名前 こんにちは", SendInput("名前", "こんにちは")),
    ("!who", CommandInput(COMMANDS["who"])),
    ("!quit", CommandInput(COMMANDS["quit"])),
    ("!help ", CommandInput(COMMANDS["help"])),
])
def test_valid_input(line, parsed):
    assert parse_input(line) == parsed


@pytest.mark.parametrize("line, fragment", [
    ("@bob", "Empty message"),
    ("@bob    ", "Empty message"),
    ("@ hi", "Say who"),
    ("@b,b hi", "not a valid user name"),
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
    for name in COMMANDS:
        assert f"!{name}" in text
    assert "@<user> <message>" in text


def test_help_in_the_shell_lists_its_commands_and_keys_not_the_script_ones():
    text = "\n".join(help_lines(scripted=False))
    assert "!who" in text and "!quit" in text
    assert "!expect" not in text and "!wait" not in text
    assert "Keys:" in text and "Ctrl-Y brings it back" in text and "Tab" in text
