"""The protocol in one table: each request, the replies that answer it, and how each
version of the protocol spells them on the wire.

:data:`ANSWERS` says which replies answer which request (the client's session pairs
them by it); a :class:`Version` spells each word: :data:`CURRENT` as SPEC's table
does, :data:`OLDER` by :data:`OLDER_DIFFERENCES`, the second table. The parsers and
encoders of :mod:`chatsh.protocol`, and through them the client and the server, spell
lines as :data:`CURRENT` does; conform writes and reads its lines through it too, and
tells a server of the older version by :data:`OLDER`. A version differs from another
by its spelling alone.
"""

from __future__ import annotations

import enum


class Word(enum.Enum):
    """What a line means, whatever a version calls it."""

    HELLO_FROM = "log in as a name"
    LIST = "ask who is logged in"
    SEND = "send a message to a name"
    HELLO = "logged in"
    IN_USE = "the name is taken"
    BUSY = "the server is full"
    LIST_OK = "who is logged in"
    SEND_OK = "the message was forwarded"
    BAD_DEST_USER = "no one of that name is logged in"
    DELIVERY = "a message from a name"
    BAD_RQST_HDR = "the last line had a bad header"
    BAD_RQST_BODY = "the last line had a bad body"

    __hash__ = object.__hash__
    """Each word is one object: hashed by identity, a look-up keyed by words costs what one
    keyed by types does (Enum's own hash of the name takes 3 times as long)."""


_ERRORS = frozenset({Word.BAD_RQST_HDR, Word.BAD_RQST_BODY})

ANSWERS: dict[Word, frozenset[Word]] = {
    Word.HELLO_FROM: frozenset({Word.HELLO, Word.IN_USE, Word.BUSY, *_ERRORS}),
    Word.LIST: frozenset({Word.LIST_OK, *_ERRORS}),
    Word.SEND: frozenset({Word.SEND_OK, Word.BAD_DEST_USER, *_ERRORS}),
}
"""The requests (the words a client sends), each with the replies that answer it; a
DELIVERY answers none: it comes at any moment."""

WITH_BODY = frozenset({Word.HELLO_FROM, Word.SEND, Word.HELLO, Word.LIST_OK, Word.DELIVERY})
"""Words a space and a body follow; every other word is a line by itself."""


class Version:
    """One version of the protocol: how it spells each word."""

    def __init__(self, name: str, spelling: dict[Word, bytes]) -> None:
        self.name = name
        self.spelling = spelling
        self._words = {spelt: word for word, spelt in spelling.items()}

    def word(self, header: bytes) -> Word | None:
        """The word a line's header spells in this version, if any."""
        return self._words.get(header)

    def line(self, word: Word, body: bytes = b"") -> bytes:
        """A whole line: the word, and `` body`` when one is given."""
        return self.spelling[word] + (b" " + body if body else b"") + b"\n"


CURRENT = Version("current", {word: word.name.replace("_", "-").encode() for word in Word})
"""The protocol as SPEC's table spells it: each word its name, ``-`` for ``_``."""

OLDER_DIFFERENCES: dict[Word, bytes] = {
    Word.LIST: b"WHO",
    Word.LIST_OK: b"WHO-OK",
    Word.BAD_DEST_USER: b"UNKNOWN",
}
"""Where the protocol's older version, which some published servers still speak, spells
a word otherwise; every other word, and which replies answer which request, it shares."""
OLDER = Version("older", {**CURRENT.spelling, **OLDER_DIFFERENCES})
