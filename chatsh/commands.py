"""What a user types, parsed: ``@user message``, ``!who``, ``!help``, ``!quit``.

One registry of commands, each with its handler, feeds parsing, dispatch,
``!help``, completion and the input lexer, so a command is one entry. Pure:
handlers act through the :class:`CommandHost` a front end provides.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .expect import Expectation, parse_expectation, parse_seconds
from .names import body_problem, destination_problem
from .record import Record
from .sanitize import quoted

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    from typing import Any, Protocol

    class CommandHost(Protocol):
        """What a command may do; each front end provides it."""

        def send_message(self, destination: str, body: str) -> None: ...
        def request_users(self) -> None: ...
        def show_help(self) -> None: ...
        def expect(self, expectation: Expectation) -> None: ...
        def wait(self, seconds: float) -> None: ...
        def talk_to(self, partner: str | None) -> None: ...
        def show_last(self, peer: str | None, count: int) -> None: ...
        def search(self, text: str) -> None: ...
        def mute(self, name: str, muted: bool) -> None: ...


QUIT = "quit"
"""What a handler returns to end the session."""


class Command(Record):
    """A ``!command``: ``run`` gets the host and its argument as ``parse`` made it.

    ``parse`` (given only for commands that take an argument) turns the text
    after the name into the argument, raising ValueError with a one-line reason.
    A ``check`` (``!expect``) that cannot run fails the script. A ``shell_only``
    command (one that reads the message store) is refused in scripts.
    """

    __slots__ = ("name", "usage", "description", "run", "parse", "scripts_only", "check",
                 "shell_only")

    def __init__(self, name: str, usage: str, description: str,
                 run: Callable[[CommandHost, Any], str | None],
                 parse: Callable[[str], Any] | None = None, scripts_only: bool = False,
                 check: bool = False, shell_only: bool = False) -> None:
        self.name, self.usage, self.description = name, usage, description
        self.run, self.parse = run, parse
        self.scripts_only, self.check, self.shell_only = scripts_only, check, shell_only


def _quit(host: CommandHost, argument: None) -> str:
    return QUIT


def _who(host: CommandHost, argument: None) -> None:
    host.request_users()


def _help(host: CommandHost, argument: None) -> None:
    host.show_help()


def _expect(host: CommandHost, expectation: Expectation) -> None:
    host.expect(expectation)


def _wait(host: CommandHost, seconds: float) -> None:
    host.wait(seconds)


def _talk_to(host: CommandHost, partner: str | None) -> None:
    host.talk_to(partner)


def parse_partner(text: str) -> str | None:
    """``!to``'s argument: a user name, or nothing (stop)."""
    name = text.strip().removeprefix("@")
    if not name:
        return None
    problem = destination_problem(name)
    if problem:
        raise ValueError(f"{name} is not a valid user name: {problem}")
    return name


def _last(host: CommandHost, query: tuple[str | None, int]) -> None:
    host.show_last(*query)


def _search(host: CommandHost, text: str) -> None:
    host.search(text)


def _mute(host: CommandHost, name: str) -> None:
    host.mute(name, True)


def _unmute(host: CommandHost, name: str) -> None:
    host.mute(name, False)


LAST_COUNT = 20
"""Messages ``!last`` shows when not told how many."""
MOST_RECALLED = 1000
"""Messages ``!last`` and ``!search`` show at most."""


def parse_last(text: str) -> tuple[str | None, int]:
    """``!last [USER] [N]``: whose messages (None: anyone's) and how many. A number
    alone is a count (``!last @42`` names the user 42); of two words, the first is a
    name."""
    words = text.split()
    if len(words) > 2:
        raise ValueError("!last takes a name and a number at most: !last [USER] [N]")
    peer = None
    if len(words) == 2 or (words and not _is_count(words[0])):
        peer = parse_name(words.pop(0))
    if not words:
        return peer, LAST_COUNT
    if not _is_count(words[0]) or not 1 <= int(words[0]) <= MOST_RECALLED:
        raise ValueError(f"{words[0]} is not a number of messages from 1 to {MOST_RECALLED}")
    return peer, int(words[0])


def _is_count(word: str) -> bool:
    return word.isascii() and word.isdigit()


def parse_name(text: str) -> str:
    """A user name (``@`` before it allowed)."""
    name = parse_partner(text)
    if name is None:
        raise ValueError("Say whose: a user name")
    return name


MOST_SEARCHED_WORDS = 32
"""Different words one ``!search`` looks for at most (each costs a pass over the index)."""


def parse_search(text: str) -> str:
    if not text.strip():
        raise ValueError("Say what to look for: !search TEXT")
    from .store import search_words  # (the shell has the store loaded by now)

    words = search_words(text)
    if not words:
        raise ValueError("Say what to look for: !search TEXT (control characters part "
                         "words, and are not looked for)")
    if len(words) > MOST_SEARCHED_WORDS:
        raise ValueError(f"!search looks for at most {MOST_SEARCHED_WORDS} different words")
    return text.strip()


COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command("who", "!who", "list the users online", _who),
        Command("help", "!help", "show the commands", _help),
        Command("quit", "!quit", "leave chatsh", _quit),
        Command("to", "!to [USER]", "send lines without @ to USER; !to alone stops",
                _talk_to, parse_partner),
        Command("last", "!last [USER] [N]", f"the last N messages (default {LAST_COUNT}) "
                "with USER, or with anyone", _last, parse_last, shell_only=True),
        Command("search", "!search TEXT", "the kept messages that hold every word of TEXT",
                _search, parse_search, shell_only=True),
        Command("mute", "!mute USER", "keep USER's messages off the screen (still kept, "
                "and counted in the toolbar)", _mute, parse_name, shell_only=True),
        Command("unmute", "!unmute USER", "show USER's messages again", _unmute, parse_name,
                shell_only=True),
        Command("expect", "!expect TEXT|/RE/", "in a script: wait until a line shows TEXT",
                _expect, parse_expectation, scripts_only=True, check=True),
        Command("wait", "!wait SECONDS", "in a script: pause sending", _wait, parse_seconds,
                scripts_only=True),
    )
}
MESSAGE_USAGE = "@<user> <message>"
MESSAGE_DESCRIPTION = "send <message> to <user>"
SEVERAL_USAGE = "@<user>,<user> <message>"
SEVERAL_DESCRIPTION = "send <message> to each <user>, one by one"


class SendInput(Record):
    __slots__ = ("destination", "body")

    def __init__(self, destination: str, body: str) -> None:
        self.destination = destination
        self.body = body


class MultiSendInput(Record):
    """``@a,b message``: the same body to each name, in order (a name holds no comma)."""

    __slots__ = ("destinations", "body")

    def __init__(self, destinations: tuple[str, ...], body: str) -> None:
        self.destinations = destinations
        self.body = body


class CommandInput(Record):
    __slots__ = ("command", "argument")

    def __init__(self, command: Command, argument: Any = None) -> None:
        self.command = command
        self.argument = argument

    def run(self, host: CommandHost) -> str | None:
        return self.command.run(host, self.argument)


class InputError(Record):
    """A line refused; ``check``: it was a check that cannot run (an ``!expect``
    without a valid pattern)."""

    __slots__ = ("message", "check")

    def __init__(self, message: str, check: bool = False) -> None:
        self.message = message
        self.check = check


ParsedInput = SendInput | MultiSendInput | CommandInput | InputError

_PLAIN_ADDRESS = re.compile(r"@([\x22\x27-\x29\x2b\x2d-\x3f\x41-\x5d\x5f-\x7e]{1,64}) ")
"""``@<name> `` with a name that needs no further check: at most 64 characters of
printable ASCII, no space, none of ``! @ # $ % ^ & * ,`` (a pattern is the fastest
test of a line: 0.2 ms to compile, 0.2 us a line less than string methods)."""


def parse_input(line: str, partner: str | None = None) -> ParsedInput:
    """Parse one input line (already stripped of its newline); with a ``partner``
    (``!to``), a line that is neither a message nor a command is a message to them,
    exactly as typed."""
    text = line.lstrip()
    if text.startswith("@"):
        plain = _PLAIN_ADDRESS.match(text)
        if plain is not None:  # the common case, with a body with something to send
            body = text[plain.end():]
            if not body.isspace() and body_problem(body) is None:
                return SendInput(plain[1], body)
        return _parse_message(text)
    text = text.rstrip()
    if text.startswith("!"):
        name, _, rest = text[1:].partition(" ")
        command = COMMANDS.get(name)
        if command is None:
            return InputError(f"Unknown command !{name}; type !help for the commands.")
        if command.parse is None:
            if rest.strip():
                return InputError(f"!{name} takes no arguments.")
            return CommandInput(command)
        try:
            return CommandInput(command, command.parse(rest))
        except ValueError as exc:
            return InputError(f"{exc}.", command.check)
    if text.startswith("/"):
        hint = _irc_hint(text, partner)
        if hint is not None:
            return hint
    if partner:
        return _message(partner, line)
    return InputError("Start a message with @<user> or a command with ! (type !help).")


_IRC_FORMS = {"msg": "@{name} <message>", "query": "!to {name}", "quit": "!quit (or Ctrl-D)",
              "who": "!who"}
"""The chatsh form of the IRC commands a user of irssi or WeeChat types by reflex."""


def _irc_hint(text: str, partner: str | None) -> InputError | None:
    """The one-line hint for ``/msg``, ``/query``, ``/quit`` or ``/who``, if ``text`` is
    one (in ``!to`` mode too: it would go to the partner as text)."""
    word, _, rest = text[1:].partition(" ")
    form = _IRC_FORMS.get(word.lower())
    if form is None:
        return None
    name, _, message = rest.strip().partition(" ")
    names = name.split(",") if word.lower() == "msg" else [name]
    if (not name or len(names) > MOST_ADDRESSED
            or any(not each or destination_problem(each) for each in names)):
        name, message = "<user>", ""
    message = message.lstrip(" ")
    hint = f"Not a chatsh command: {form.format(name=name)} does that here"
    if message and word.lower() == "msg":  # the line to type instead, as far as it goes
        hint = f"Not a chatsh command: @{name} {quoted(message)} does that here"
    if partner:
        hint += f" (to send it to {partner}: @{partner} {quoted(text)})"
    return InputError(hint + ".")


MOST_ADDRESSED = 20
"""Names one line writes to at most; past that it sends nothing (as an IRC server
answers too many targets): 1,000 names were 1,000 SENDs and 1,000 lines of replies."""


def _parse_message(text: str) -> ParsedInput:
    """``@user message``: the body is everything after the one space that ends the name,
    exactly as typed; it is sliced out once (it may be megabytes)."""
    space = text.find(" ")
    destination = text[1:space].rstrip() if space > 0 else text[1:].rstrip()
    if not destination:
        return InputError("Say who to send to: @<user> <message>.")
    names = tuple(dict.fromkeys(destination.split(",")))
    if "" in names:
        return InputError(f"A name is missing in @{destination} (to write to several: "
                          "@<user>,<user> <message>).")
    if len(names) > MOST_ADDRESSED:
        return InputError(f"Not sent: the line names {len(names)} users; one line writes "
                          f"to {MOST_ADDRESSED} at most.")
    for name in names:
        problem = destination_problem(name)
        if problem:
            return InputError(f"@{name} is not a valid user name: {problem}.")
    body = text[space + 1:] if space > 0 else ""
    if len(names) == 1:
        return _message(names[0], body)
    parsed = _message(destination, body)
    return MultiSendInput(names, body) if isinstance(parsed, SendInput) else parsed


def _message(destination: str, body: str) -> SendInput | InputError:
    if not body or body.isspace():
        return InputError(f"Empty message: type @{destination} <message>.")
    problem = body_problem(body)
    if problem:
        return InputError(f"Not sent: {problem}.")
    return SendInput(destination, body)


_HEAD = 1024
"""Bytes of a long line enough to hold ``@<user> `` and what spaces come before."""


def parse_long_message(data: bytearray, partner: str | None = None) -> tuple[str, int] | None:
    """A long line of ASCII (megabytes) that is a message to send as it is: its
    destination and where its body starts. None for any other line, and for a message
    with something to refuse: those are decoded and parsed as every line is, to say why.
    """
    head = data[:_HEAD].decode("ascii")
    parsed = parse_input(head, partner)
    if (not isinstance(parsed, SendInput) or not parsed.body.strip()
            or b"\0" in data or b"\r" in data or b"\n" in data):
        return None
    return parsed.destination, len(head) - len(parsed.body)


SHELL_KEYS = (
    ("Tab, Shift-Tab", "complete @names and !commands, cycling; on an empty line: answer"),
    ("Up, Down, Ctrl-R", "earlier lines, and search them"),
    ("Ctrl-C", "clear the line (Ctrl-Y brings it back); it never leaves"),
    ("paste", "lines pasted after @<user> each go to <user>; more than 5 ask first"),
    ("Ctrl-D", "leave, on an empty line"),
    ("Ctrl-Z", "suspend (fg brings chatsh back)"),
)
"""The shell's keys, for ``!help``."""


def help_lines(scripted: bool = True) -> list[str]:
    """The ``!help`` text, one line per command: in a script every command, in the
    shell those it takes and then its keys."""
    return [column + what for column, what in help_rows(scripted)]


def help_rows(scripted: bool = True) -> list[tuple[str, str]]:
    """:func:`help_lines` as a heading and nothing, or a command's column (its usage,
    padded) and what the command does."""
    commands = [c for c in COMMANDS.values()
                if (scripted or not c.scripts_only) and not (scripted and c.shell_only)]
    keys = () if scripted else SHELL_KEYS
    width = max(len(SEVERAL_USAGE), *(len(c.usage) for c in commands),
                *(len(key) for key, _ in keys))
    rows = [("Commands:", ""), (f"  {MESSAGE_USAGE:<{width}}  ", MESSAGE_DESCRIPTION),
            (f"  {SEVERAL_USAGE:<{width}}  ", SEVERAL_DESCRIPTION)]
    rows += [(f"  {c.usage:<{width}}  ", c.description) for c in commands]
    if keys:
        rows += [("Keys:", ""), *((f"  {key:<{width}}  ", what) for key, what in keys)]
    return rows
