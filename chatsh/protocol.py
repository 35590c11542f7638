"""The chat protocol as pure code: parse lines into events, encode requests and replies.

Nothing here touches a socket, a thread or the terminal. Both directions are
covered: the client parses server lines and encodes requests; the server parses
client requests and encodes replies. Lines are given without their ``\\n``. The words
come from :mod:`chatsh.words`, the rules of names and bodies from :mod:`chatsh.names`.
"""

from __future__ import annotations

from functools import lru_cache

from .defaults import DEFAULT_PORT as DEFAULT_PORT  # where a reader of the protocol looks
from .names import MAX_NAME_LENGTH, body_problem, destination_problem, is_valid_name, name_problem
from .record import Record
from .words import CURRENT, OLDER, Word

ENCODING = "utf-8"


class ProtocolError(ValueError):
    """A request that cannot be put on the wire as asked."""


def _decode(raw: bytes) -> str:
    return raw.decode(ENCODING, errors="replace")


# --- Server -> client -------------------------------------------------------


class Hello(Record):
    word = Word.HELLO
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class InUse(Record):
    word = Word.IN_USE
    __slots__ = ()


class Busy(Record):
    word = Word.BUSY
    __slots__ = ()


class ListOk(Record):
    word = Word.LIST_OK
    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names


class SendOk(Record):
    word = Word.SEND_OK
    __slots__ = ()


class BadDestUser(Record):
    word = Word.BAD_DEST_USER
    __slots__ = ()


class Delivery(Record):
    word = Word.DELIVERY
    __slots__ = ("sender", "body")

    def __init__(self, sender: str, body: str) -> None:
        self.sender = sender
        self.body = body


class BadRequestHeader(Record):
    word = Word.BAD_RQST_HDR
    __slots__ = ()


class BadRequestBody(Record):
    word = Word.BAD_RQST_BODY
    __slots__ = ()


class UnknownLine(Record):
    """A server line this protocol does not define (kept for reporting)."""

    word = None
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


BareReply = InUse | Busy | SendOk | BadDestUser | BadRequestHeader | BadRequestBody
"""The replies that are a word alone."""
ServerEvent = Hello | ListOk | Delivery | BareReply | UnknownLine
"""What a server line is parsed into; each event but :class:`UnknownLine` names its
word of the table (``SendOk.word`` is ``Word.SEND_OK``)."""

_BARE: tuple[BareReply, ...] = (InUse(), Busy(), SendOk(), BadDestUser(), BadRequestHeader(),
                                BadRequestBody())
"""Each reply that is a word alone, as the one event every line of it is parsed into."""
EVENTS: dict[Word, type[ServerEvent]] = {
    Word.HELLO: Hello, Word.LIST_OK: ListOk, Word.DELIVERY: Delivery,
    **{event.word: type(event) for event in _BARE}}
"""The event each word a server sends is parsed into."""
_BARE_REPLIES = {version.spelling[event.word]: event for version in (OLDER, CURRENT)
                 for event in _BARE}
"""Each reply that is a word alone, by its spelling in either version: a server of the
older version answers a SEND to no one with ``UNKNOWN``, its ``BAD-DEST-USER``."""
DELIVERY_HEAD = CURRENT.spelling[Word.DELIVERY] + b" "
_HELLO = CURRENT.spelling[Word.HELLO]
_LIST_OK = CURRENT.spelling[Word.LIST_OK]


class RawDelivery(Record):
    """A DELIVERY whose body is long and printable ASCII, kept as the bytes that came:
    never decoded nor copied (the body needs no escaping to be shown)."""

    word = Word.DELIVERY
    __slots__ = ("sender", "body")

    def __init__(self, sender: str, body: bytearray) -> None:
        self.sender = sender
        self.body = body

    def decoded(self) -> Delivery:
        """The same message as a :class:`Delivery` (a copy of the body)."""
        return Delivery(self.sender, self.body.decode("ascii"))


SHORT_LINE = 64 * 1024
"""A DELIVERY line up to this long is decoded whole; a longer one comes as the
``bytearray`` it was received in and is taken apart in place."""

_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def parse_server_line(line: bytes | bytearray) -> ServerEvent | RawDelivery:
    """Turn one server line into an event; never raises."""
    if isinstance(line, bytearray):  # a long one, handed over by the framer
        if line.startswith(DELIVERY_HEAD):
            return _long_delivery(line)
        line = bytes(line)
    if line.startswith(DELIVERY_HEAD):  # the line of a flood: tested first
        return parse_delivery(line)
    if line.endswith(b"\r"):
        line = line[:-1]
    bare = _BARE_REPLIES.get(line)
    if bare is not None:
        return bare
    header, space, rest = line.partition(b" ")
    if header == _LIST_OK:
        names = _decode(rest).split(",") if rest else []
        return ListOk(tuple(name for name in names if name))
    elif header == _HELLO and rest:
        return Hello(_decode(rest))
    return UnknownLine(_decode(line))


def parse_delivery(line: bytes) -> Delivery | UnknownLine:
    """A line that starts with ``DELIVERY `` (one trailing ``\\r`` dropped)."""
    pair = delivery_pair(line)
    if pair is None:
        text = line.decode(ENCODING, "replace")
        return UnknownLine(text[:-1] if text.endswith("\r") else text)
    return Delivery(*pair)


def delivery_pair(line: bytes) -> tuple[str, str] | None:
    """The sender and body of a line that starts with ``DELIVERY `` (one trailing
    ``\\r`` dropped), or None when it has no sender. Split, not searched: ``find()``
    with a start parses its arguments the slow way (4% of a line)."""
    parts = line.decode(ENCODING, "replace").split(" ", 2)
    if len(parts) != 3 or not parts[1]:
        return None
    body = parts[2]
    return (parts[1], body[:-1] if body.endswith("\r") else body)


def _long_delivery(line: bytearray) -> Delivery | RawDelivery | UnknownLine:
    """A long DELIVERY line, cut down in place to its body (removing bytes from either
    end of a ``bytearray`` moves no others)."""
    if line.endswith(b"\r"):
        del line[-1:]
    gap = line.find(b" ", 9)
    if gap <= 9:
        return UnknownLine(_decode(bytes(line)))
    sender = _decode(bytes(line[9:gap]))
    del line[:gap + 1]
    if not line.translate(None, _PRINTABLE_ASCII):  # a C loop; a regex takes 7x longer
        return RawDelivery(sender, line)
    return Delivery(sender, line.decode(ENCODING, "replace"))


def encode_hello_from(name: str) -> bytes:
    problem = name_problem(name)
    if problem:
        raise ProtocolError(problem)
    return _HELLO_FROM_HEAD + name.encode(ENCODING) + b"\n"


_HELLO_FROM_HEAD = CURRENT.spelling[Word.HELLO_FROM] + b" "
_LIST_LINE = CURRENT.line(Word.LIST)


def encode_list() -> bytes:
    return _LIST_LINE


def encode_send_parts(destination: str, body: str) -> tuple[bytes, bytes, bytes]:
    """A SEND as header, body and newline, so a large body is encoded only once."""
    _check_destination(destination)
    problem = body_problem(body)
    if problem:
        raise ProtocolError(problem)
    return encode_checked_send(destination, body)


def encode_checked_send(destination: str, body: str) -> tuple[bytes, bytes, bytes]:
    """:func:`encode_send_parts` for a name and body already found valid (a parsed
    input line): the checks are not made twice."""
    return _send_head(destination), body.encode(ENCODING), b"\n"


def encode_send_view(destination: str, body: memoryview) -> tuple[bytes, memoryview, bytes]:
    """A SEND whose body is bytes already (UTF-8 with no ``\\n``, ``\\r`` or NUL):
    header, the body itself, newline."""
    _check_destination(destination)
    if not len(body):
        raise ProtocolError("a message cannot be empty")
    return _send_head(destination), body, b"\n"


def _check_destination(destination: str) -> None:
    """ProtocolError for a name no message can be sent to."""
    problem = destination_problem(destination)
    if problem:
        raise ProtocolError(problem)


def _send_head(destination: str) -> bytes:
    """``SEND <destination> ``."""
    return _SEND_HEAD + destination.encode(ENCODING) + b" "


_SEND_HEAD = CURRENT.spelling[Word.SEND] + b" "


def encode_send(destination: str, body: str) -> bytes:
    return b"".join(encode_send_parts(destination, body))


# --- Client -> server -------------------------------------------------------


class HelloFrom(Record):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class ListRequest(Record):
    __slots__ = ()


class SendRequest(Record):
    __slots__ = ("destination", "body")

    def __init__(self, destination: str, body: bytes) -> None:
        self.destination = destination
        self.body = body


class MalformedHeader(Record):
    """A request whose header is not one the protocol defines."""

    __slots__ = ()


class MalformedBody(Record):
    """A known header with a body the protocol does not allow."""

    __slots__ = ()


ClientRequest = HelloFrom | ListRequest | SendRequest | MalformedHeader | MalformedBody
REQUESTS: dict[Word, type[ClientRequest]] = {
    Word.HELLO_FROM: HelloFrom, Word.LIST: ListRequest, Word.SEND: SendRequest}
"""The request each word a client sends is parsed into."""


def parse_client_line(line: bytes | bytearray) -> ClientRequest:
    """Turn one client line into a request; never raises.

    A SEND body is kept as bytes so the server can relay it without decoding.
    """
    if isinstance(line, bytearray):  # (a call of bytes() costs a line 7% even when bytes)
        line = bytes(line)
    if line.endswith(b"\r"):
        line = line[:-1]
    header, space, rest = line.partition(b" ")
    word = CURRENT.word(header)
    if word is Word.LIST:
        return MalformedBody() if space else ListRequest()
    if word is Word.SEND:
        destination, space, body = rest.partition(b" ")
        name = strict_name(destination)
        if not space or not body or name is None or b"\0" in body or b"\r" in body:
            return MalformedBody()
        if not body.isascii():  # ASCII is UTF-8: only other bodies are decoded to check
            try:
                body.decode(ENCODING)
            except UnicodeDecodeError:
                return MalformedBody()
        return SendRequest(name, body)
    if word is Word.HELLO_FROM:
        name = strict_name(rest)
        return MalformedBody() if name is None else HelloFrom(name)
    return MalformedHeader()


_MAX_NAME_BYTES = 4 * MAX_NAME_LENGTH


def strict_name(raw: bytes) -> str | None:
    """The name in ``raw`` if it is valid UTF-8 and allowed.

    Raw names too long to be names are refused before the cache, so what the
    cache holds is bounded (4096 entries of at most 256 bytes) whatever clients send.
    """
    if len(raw) > _MAX_NAME_BYTES:
        return None
    return _cached_name(raw)


@lru_cache(maxsize=4096)
def _cached_name(raw: bytes) -> str | None:
    try:
        name = raw.decode(ENCODING)
    except UnicodeDecodeError:
        return None
    return name if is_valid_name(name) else None


def encode_hello(name: str) -> bytes:
    return CURRENT.line(Word.HELLO, name.encode(ENCODING))


def encode_list_ok(names: list[str] | tuple[str, ...]) -> bytes:
    return _LIST_OK + b" " + ",".join(names).encode(ENCODING) + b"\n"


def encode_delivery(sender: str, body: bytes) -> bytes:
    """``DELIVERY <sender> <body>``: the body copied once."""
    return b"".join((delivery_head(sender), body, b"\n"))


@lru_cache(maxsize=4096)
def delivery_head(sender: str) -> bytes:
    """``DELIVERY <sender> ``: what every delivery from ``sender`` starts with."""
    return DELIVERY_HEAD + sender.encode(ENCODING) + b" "


IN_USE = CURRENT.line(Word.IN_USE)
BUSY = CURRENT.line(Word.BUSY)
SEND_OK = CURRENT.line(Word.SEND_OK)
BAD_DEST_USER = CURRENT.line(Word.BAD_DEST_USER)
BAD_RQST_HDR = CURRENT.line(Word.BAD_RQST_HDR)
BAD_RQST_BODY = CURRENT.line(Word.BAD_RQST_BODY)
