"""What one Enter hands the shell: its lines in order, a paste's addressed.

A paste after ``@bob `` (or one whose first line starts ``@bob,carol ...``) sends
every one of its lines to those names, as ``!to`` mode does: a line with its own
``@name`` or a ``!command`` is its own. More than :data:`ASK_ABOVE` lines ask first,
and so does ``!to`` with a name nobody online has.
"""

from __future__ import annotations

from ..commands import CommandInput, MultiSendInput, SendInput, parse_input
from ..record import Record
from ..sanitize import sanitize

ASK_ABOVE = 5
"""Lines past which a paste asks before anything of it is sent, as irssi's
``paste_verify_line_count`` does."""


class Entered(Record):
    """The lines to run, in order (blank ones left out), and the ``@names`` that the
    first line gave the others ('' when none)."""

    __slots__ = ("lines", "address")

    def __init__(self, lines: list[str], address: str = "") -> None:
        self.lines = lines
        self.address = address

    def question(self) -> str | None:
        """What to ask before running so many lines; None when there are few."""
        if len(self.lines) <= ASK_ABOVE:
            return None
        if self.address:
            names = ", ".join(sanitize(self.address[1:]).split(","))
            return f"Send these {len(self.lines)} lines to {names}? (y/N) "
        return f"Run these {len(self.lines)} lines? (y/N) "


def entered(text: str) -> Entered:
    """The lines of ``text``: after a first line that starts with ``@names``, every
    line that starts with neither ``@`` nor ``!`` is a message to those names (a
    first line with nothing after its names only gives them)."""
    if "\n" not in text:
        return Entered([text] if text.strip() else [])
    lines = [line for line in text.split("\n") if line.strip()]
    address = _address(lines[0]) if lines else ""
    if not address:
        return Entered(lines)
    first = [] if lines[0].strip() == address else lines[:1]
    rest = [line if line.lstrip().startswith(("@", "!")) else f"{address} {line}"
            for line in lines[1:]]
    return Entered(first + rest, address)


def _address(line: str) -> str:
    """The ``@name`` or ``@name,name`` a line starts with, if its names are valid."""
    head = line.lstrip().partition(" ")[0]
    if not head.startswith("@"):
        return ""
    return head if isinstance(parse_input(f"{head} x"), (SendInput, MultiSendInput)) else ""


def new_partner(line: str) -> str | None:
    """The name a ``!to NAME`` line makes the partner, if it is such a line."""
    if not line.lstrip().startswith("!to "):
        return None
    parsed = parse_input(line)
    if not isinstance(parsed, CommandInput) or parsed.command.name != "to":
        return None
    name: str | None = parsed.argument
    return name


def unseen_question(name: str) -> str:
    """What to ask before ``!to`` a name neither listed nor heard from: a typo would
    send every later line into the void."""
    name = sanitize(name)
    return f"Nobody called {name} has been seen here; talk to {name} anyway? (y/N) "
