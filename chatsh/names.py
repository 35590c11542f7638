"""The rules of names and message bodies: which names a user may have, which a message
may go to, and what a body may hold; and what a name looks like on screen.

Pure functions on text, shared by the client, the server, the cluster and conform.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .sanitize import INVISIBLE_CATEGORIES

ECHOBOT = "echobot"
DISALLOWED_NAME_CHARS = frozenset("!@#$%^&*,")
MAX_NAME_LENGTH = 64
"""Characters a name may have; a longer one is refused (``BAD-RQST-BODY``)."""


_NAME_BREAKER = re.compile(r"[!@#$%^&*,\s\x00-\x1f\x7f-\x9f]")


def name_problem(name: str) -> str | None:
    """Say why ``name`` cannot be a user name, or return None if it can."""
    if len(name) > MAX_NAME_LENGTH:  # not cached: what the cache holds stays small
        return f"a name can have at most {MAX_NAME_LENGTH} characters"
    return _name_problem(name)


@lru_cache(maxsize=1024)
def _name_problem(name: str) -> str | None:
    """:func:`name_problem` for a name of sane length (a script names few, many times)."""
    if not name:
        return "a name cannot be empty"
    match = _NAME_BREAKER.search(name)
    if match is not None:
        char = match.group()
        if char in DISALLOWED_NAME_CHARS:
            return f"a name cannot contain {char!r}"
        if char.isspace():
            return "a name cannot contain white space"
        return "a name cannot contain control characters"
    if not name.isascii() and any(unicodedata.category(char) in INVISIBLE_CATEGORIES
                                  for char in name):
        return "a name cannot contain invisible, format or private-use characters"
    return None


_MARKS_AS_LETTERS = str.maketrans("!@#$%^&*", "xxxxxxxx")


def destination_problem(name: str) -> str | None:
    """Say why a message cannot be sent to ``name``, or return None if it can: the rules
    of :func:`name_problem` but for ``! @ # $ % ^ & *``, which some servers let a name
    hold (the course's reference server does); the server says if the user exists."""
    return name_problem(name.translate(_MARKS_AS_LETTERS))


def forbidden_in_name(name: str) -> list[str]:
    """The characters of ``name`` that no name may hold, each once, in order."""
    return [char for char in dict.fromkeys(name) if _NAME_BREAKER.match(char)
            or (not char.isascii() and unicodedata.category(char) in INVISIBLE_CATEGORIES)]


_UPPER_LOOKALIKES = str.maketrans("АВЕКМНОРСТУХЅІЈΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
                                  "ABEKMHOPCTYXSIJABEZHIKMNOPTYX")
_LOOKALIKES = str.maketrans("аеорсухіјѕԁһԛԝкьαικνορυχϲ", "aeopcyxijsdhqwkbaikvopuxc")
"""Cyrillic and Greek letters drawn like Latin ones (a subset of Unicode TR39's
confusables, after case folding)."""


def name_skeleton(name: str) -> str:
    """What a name looks like: NFKC, case folded, look-alike letters made Latin.

    Two names with one skeleton would pass for each other on screen (``Bob`` and
    ``bob``, ``еchobot`` with a Cyrillic е and ``echobot``), so a server lets
    only one of them in.
    """
    folded = unicodedata.normalize("NFKC", name).translate(_UPPER_LOOKALIKES).casefold()
    return folded.translate(_LOOKALIKES)


def is_valid_name(name: str) -> bool:
    """True when ``name`` is a name the protocol allows."""
    return name_problem(name) is None


def body_problem(body: str) -> str | None:
    """Say why ``body`` cannot be a message body, or return None if it can."""
    if body.isprintable():  # the common case, one pass
        return None if body else "a message cannot be empty"
    for char in "\n\r\0":
        if char in body:
            return f"a message cannot contain {char!r}"
    return None
