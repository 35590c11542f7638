"""What a user types, parsed: ``@user message``, ``!who``, ``!help``, ``!quit``.

One registry of commands feeds parsing, ``!help``, completion and the input
lexer, so a command is added in one place. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from .protocol import body_problem, name_problem


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    description: str


COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command("who", "!who", "list the users online"),
        Command("help", "!help", "show the commands"),
        Command("quit", "!quit", "leave chatsh"),
    )
}
MESSAGE_USAGE = "@<user> <message>"
MESSAGE_DESCRIPTION = "send <message> to <user>"


@dataclass(frozen=True, slots=True)
class SendInput:
    destination: str
    body: str


@dataclass(frozen=True, slots=True)
class CommandInput:
    name: str


@dataclass(frozen=True, slots=True)
class InputError:
    message: str


ParsedInput = SendInput | CommandInput | InputError


def parse_input(line: str) -> ParsedInput:
    """Parse one input line (already stripped of its newline)."""
    text = line.lstrip()
    if text.startswith("@"):
        return _parse_message(text)
    text = text.rstrip()
    if text.startswith("!"):
        name, _, rest = text[1:].partition(" ")
        if name not in COMMANDS:
            return InputError(f"Unknown command !{name}; type !help for the commands.")
        if rest.strip():
            return InputError(f"!{name} takes no arguments.")
        return CommandInput(name)
    return InputError("Start a message with @<user> or a command with ! (type !help).")


def _parse_message(text: str) -> ParsedInput:
    """``@user message``; the body is sliced out once (it may be megabytes)."""
    space = text.find(" ")
    destination = text[1:space].rstrip() if space > 0 else text[1:].rstrip()
    if not destination:
        return InputError("Say who to send to: @<user> <message>.")
    problem = name_problem(destination)
    if problem:
        return InputError(f"@{destination} is not a valid user name: {problem}.")
    start, end = (space, len(text)) if space > 0 else (len(text), len(text))
    while start < end and text[start] == " ":
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    body = text[start:end]
    if not body:
        return InputError(f"Empty message: type @{destination} <message>.")
    problem = body_problem(body)
    if problem:
        return InputError(f"Not sent: {problem}.")
    return SendInput(destination, body)


def help_lines() -> list[str]:
    """The ``!help`` text, one line per command."""
    width = max(len(MESSAGE_USAGE), *(len(c.usage) for c in COMMANDS.values()))
    lines = [f"  {MESSAGE_USAGE:<{width}}  {MESSAGE_DESCRIPTION}"]
    lines += [f"  {c.usage:<{width}}  {c.description}" for c in COMMANDS.values()]
    return ["Commands:", *lines]
