"""The exact text chatsh shows, as styled fragments both front ends share.

A line is a list of ``(style, text)`` fragments; the REPL prints them in colour
and the script runner writes their text. Every string from the network is put
through the sanitiser here, so no front end can forget to.
"""

from __future__ import annotations

import functools
import operator
import re
import unicodedata
import zlib
from collections.abc import Callable

from .names import DISALLOWED_NAME_CHARS, forbidden_in_name
from .sanitize import escape_name_segments, escape_segments, sanitize
from .words import Word

Fragments = list[tuple[str, str]]
"""A printed line as ``(style, text)`` pieces."""
_text = operator.itemgetter(1)
"""The text of a ``(style, text)`` fragment."""

WELCOME = "Welcome to Chat Client. Enter your login:"
SENT = "The message was sent successfully"
BAD_DEST = "The destination user does not exist"
BAD_HEADER = "Error: Unknown issue in previous message header."
BAD_BODY = "Error: Unknown issue in previous message body."
SERVER_FULL = "Cannot log in. The server is full!"
CONNECTION_LOST = "Connection to the server was lost."
CLOSED_AT_LOGIN = ("The server closed the connection without answering the login (a TLS "
                   "port needs --tls; a server may also let only some addresses in).")
"""No verdict at all: no name was refused, so no other name is asked for."""

ESCAPE_STYLE = "class:escape"

REPLY_TEXT: dict[Word | None, str] = {
    Word.SEND_OK: SENT,
    Word.BAD_DEST_USER: BAD_DEST,
    Word.BAD_RQST_HDR: BAD_HEADER,
    Word.BAD_RQST_BODY: BAD_BODY,
}
"""What each one-word reply prints, by its word (LIST-OK prints a list: see
:func:`user_list`)."""


def plain(line: Fragments) -> str:
    """The text of a line, without its styles."""
    return "".join(text for _, text in line)


def width(line: Fragments) -> int:
    """The number of characters of a line, without its styles."""
    return sum(map(len, map(_text, line)))


class RawLine:
    """A line ending in printable ASCII bytes that are written as they are (a long
    body, never decoded nor copied); a script's output takes it beside fragments."""

    __slots__ = ("head", "body")

    def __init__(self, head: str, body: bytearray) -> None:
        self.head = head
        self.body = body

    def text(self) -> str:
        """The whole line as text (a copy: for ``!expect``, not for output)."""
        return self.head + self.body.decode("ascii")


ScriptLineOut = Fragments | RawLine
"""A line a script writes."""


def plain_text(line: ScriptLineOut) -> str:
    """The text of a line of either kind."""
    return line.text() if isinstance(line, RawLine) else plain(line)


def untrusted(text: str, style: str) -> Fragments:
    """Fragments for text from the network, control characters made visible."""
    return _styled(escape_segments(text), style)


def untrusted_name(name: str, style: str) -> Fragments:
    """Fragments for a user name from the network: invisible characters shown too."""
    return _styled(escape_name_segments(name), style)


def _styled(segments: list[tuple[bool, str]], style: str) -> Fragments:
    return [(f"{style} {ESCAPE_STYLE}" if is_escape else style, piece)
            for is_escape, piece in segments]


def system(text: str) -> Fragments:
    return [("class:system", text)]


HEAD = "class:head"
"""The style class of a line's head, after which its further rows hang when the line is
folded to the terminal's width (ui/fold.py; a message's ``From bob: `` is one too)."""


def help_row(column: str, what: str) -> Fragments:
    """A row of ``!help``: a command's column, then what it does (a heading alone)."""
    return [("class:system " + HEAD, column), ("class:system", what)] if what else system(column)


def error(text: str) -> Fragments:
    return [("class:error", text)]


def logged_in(name: str) -> Fragments:
    return [("class:system", "Successfully logged in as "),
            *untrusted_name(name, "class:self"), ("class:system", "!")]


def name_in_use(name: str) -> Fragments:
    return [("class:error", "Cannot log in as "), *untrusted_name(name, "class:error"),
            ("class:error", ". That username is already in use.")]


def name_disallowed(name: str) -> Fragments:
    return [("class:error", "Cannot log in as "), *untrusted_name(name, "class:error"),
            ("class:error", ". That username contains disallowed characters.")]


NAMED_CHARS = 5
"""Characters the line after RI5 names; it counts the rest."""


def name_rule(name: str, problem: str) -> Fragments:
    """The line after RI5 when chatsh refused a name itself: the characters of it that
    no name may hold (else ``problem``, why it was refused, as a sentence)."""
    chars = forbidden_in_name(name)
    named = [_char_named(char) for char in chars[:NAMED_CHARS]]
    if len(chars) > NAMED_CHARS:
        named.append(f"{len(chars) - NAMED_CHARS} more")
    if not named:
        text = f"{problem}."
    elif len(named) == 1:
        text = f"{named[0]} is not allowed in a name."
    else:
        text = f"{', '.join(named[:-1])} and {named[-1]} are not allowed in a name."
    return [("class:hint", text[0].upper() + text[1:])]


def _char_named(char: str) -> str:
    """A character as the line after RI5 names it: never the character itself when it
    is white space, a control or invisible."""
    if char in DISALLOWED_NAME_CHARS:
        return f"'{char}'"
    if char == " ":
        return "a space"
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


@functools.lru_cache(maxsize=8)
def mention_test(name: str) -> Callable[[str], bool]:
    """The test of whether a body names ``name`` as a whole word, in any case ("hi
    Alice!" does, "malice" does not). A body without the folded name is passed over
    before the pattern (which takes 1.4 us on a line of 60 characters)."""
    if not name:
        return _never
    folded = name.casefold()
    search = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE).search

    def test(body: str) -> bool:
        return folded in body.casefold() and search(body) is not None

    return test


def _never(body: str) -> bool:
    return False


def mentions(name: str, body: str) -> bool:
    """Whether ``body`` names ``name`` (see :func:`mention_test`)."""
    return mention_test(name)(body)


SENDER_COLOURS = 6
"""How many colours senders are told apart by (styles ``sender-0`` ...)."""


def sender_style(name: str) -> str:
    """The style of a sender's name: one of the sender colours, always the same for the
    same name (from a checksum of it, not Python's salted hash)."""
    colour = zlib.crc32(name.encode("utf-8", "replace")) % SENDER_COLOURS
    return f"class:sender class:sender-{colour}"


@functools.lru_cache(maxsize=256)
def _delivery_head(sender: str) -> tuple[tuple[str, str], ...]:
    """``From <sender>: `` as fragments, made once per sender."""
    return (("class:from", "From "), *untrusted_name(sender, sender_style(sender)),
            ("class:from", ": "))


def delivery_head(sender: str) -> Fragments:
    """The start of a message's line: ``From <sender>: ``."""
    return list(_delivery_head(sender))


_BODY_STYLES = ("class:body", "class:mention")
"""A message body's style, and a mention's (a mention of the user stands out)."""


def body_style(highlight: bool) -> str:
    """The style of a message's body, or of a mention."""
    return _BODY_STYLES[highlight]


def delivery(sender: str, body: str, highlight: bool = False) -> Fragments:
    style = _BODY_STYLES[highlight]
    if body.isprintable():  # the common case: one fragment, nothing to escape
        return [*_delivery_head(sender), (style, body)] if body else [
            *_delivery_head(sender)]
    return [*_delivery_head(sender), *untrusted(body, style)]


def raw_delivery(sender: str, body: bytearray) -> RawLine:
    """:func:`delivery` for a printable ASCII body kept as bytes."""
    return RawLine(plain(list(_delivery_head(sender))), body)


def user_list(names: tuple[str, ...] | list[str]) -> list[Fragments]:
    """The ``!who`` answer: a count line, then one name per line."""
    lines = [system(f"There are {len(names)} online users:")]
    lines.extend(untrusted_name(name, "class:user") for name in names)
    return lines


def unknown_line(text: str) -> Fragments:
    return [("class:error", "Unknown message from the server: "), *untrusted(text, "class:error")]


def renamed(asked: str, given: str) -> Fragments:
    """The server logged us in under another name than the one we asked for."""
    return [("class:error", "The server logged you in as "),
            *untrusted_name(given, "class:error"), ("class:error", ", not as "),
            *untrusted_name(asked, "class:error"), ("class:error", ".")]


NO_REPLY_NAMED = 3
"""Lines a notice of requests without a reply quotes; it counts the rest."""
QUOTED = 60
"""Characters of a line such a notice quotes."""


def no_reply(lines: list[str], seconds: float) -> Fragments:
    """Requests still without a reply after ``seconds``: the lines they came from, each
    once (a line to several names sends several requests), long ones cut short."""
    lines = list(dict.fromkeys(lines))
    quoted = ", ".join(f'"{sanitize(line[:QUOTED])}{"..." if len(line) > QUOTED else ""}"'
                       for line in lines[:NO_REPLY_NAMED])
    more = f" and {len(lines) - NO_REPLY_NAMED} more" if len(lines) > NO_REPLY_NAMED else ""
    them = "them" if len(lines) > 1 else "it"
    return error(f"No reply to {quoted}{more} after {seconds:g} s; the server may never "
                 f"answer {them}.")
