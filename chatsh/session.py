"""One client connection as pure state: login, reply pairing and framing.

In the style of h11's ``Connection``: bytes in through :meth:`ClientSession.receive_data`,
events out; requests in through :meth:`ClientSession.send`, bytes out. No
socket, thread or clock: the engine drives it, and tests drive it directly.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable

from . import protocol as p
from .defaults import CLIENT_MAX_LINE
from .framing import Line, LineFramer, OversizedLine
from .record import Record
from .words import ANSWERS, CURRENT, WITH_BODY, Word

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    from typing import TypeGuard

Wire = tuple[bytes | memoryview, ...]
MAX_HELD = 8 * 1024 * 1024
"""Bytes of memory the lines held before the login verdict may take before the engine
stops reading."""
HELD_LINE_COST = 200
"""Bytes a held line takes besides its characters (its event's objects: the pair's
tuple, the headers of its strings): 12 MiB of short lines took 190 MiB when only
their bytes were counted."""


class ScriptLine(Record):
    """Where a request came from: its line number in a script (0 in the shell) and text."""

    __slots__ = ("number", "text")

    def __init__(self, number: int, text: str) -> None:
        self.number = number
        self.text = text


class Request:
    """A request waiting for its reply (compared by identity).

    ``header`` is the request's word (``Word.LIST`` or ``Word.SEND``): the table's
    :data:`~chatsh.words.ANSWERS` says which replies answer it; ``line`` names the
    script line it came from; a ``quiet`` request's reply is for chatsh itself (the
    REPL's first user list, a script's final barrier); ``destination`` is a SEND's
    name (a ``BAD-DEST-USER`` says whom it was for); ``kept`` is what a front end kept
    of a SEND (the shell's store marks it refused on a ``BAD-DEST-USER``).
    """

    __slots__ = ("header", "line", "quiet", "destination", "kept")

    def __init__(self, header: Word, line: ScriptLine | None = None,
                 quiet: bool = False, destination: str | None = None) -> None:
        self.header = header
        self.line = line
        self.quiet = quiet
        self.destination = destination
        self.kept: object = None

    def __repr__(self) -> str:
        return (f"Request({self.header}, line={self.line!r}, quiet={self.quiet!r}, "
                f"destination={self.destination!r})")


def _events(words: Iterable[Word]) -> frozenset[type[p.ServerEvent]]:
    return frozenset(p.EVENTS[word] for word in words)


_ANSWERS: dict[Word, frozenset[type[p.ServerEvent]]] = {
    header: _events(replies) for header, replies in ANSWERS.items()}
"""The events that answer each request, from the table."""
_REPLIES = frozenset().union(*_ANSWERS.values())
"""The events that answer some request (a DELIVERY answers none)."""


Outgoing = tuple[Request, Wire]


def message_request(destination: str, body: str, line: ScriptLine | None = None) -> Outgoing:
    """A SEND, encoded (raises :class:`~chatsh.protocol.ProtocolError` if it cannot be)."""
    return Request(Word.SEND, line, destination=destination), p.encode_send_parts(destination, body)


def checked_message_request(destination: str, body: str, line: ScriptLine | None = None
                            ) -> Outgoing:
    """A SEND of a parsed input line, whose name and body are known to be valid."""
    return Request(Word.SEND, line, destination=destination), p.encode_checked_send(destination,
                                                                                 body)


def long_message_request(destination: str, body: memoryview, line: ScriptLine | None = None
                         ) -> Outgoing:
    """A SEND of a body already checked and encoded (a long script line's bytes)."""
    return Request(Word.SEND, line, destination=destination), p.encode_send_view(destination, body)


def users_request(line: ScriptLine | None = None, quiet: bool = False) -> Outgoing:
    """A LIST, encoded."""
    return Request(Word.LIST, line, quiet), (p.encode_list(),)


class LoggedIn(Record):
    """The server accepted the login; ``name`` is the one it says, ``asked`` ours."""

    __slots__ = ("name", "asked")

    def __init__(self, name: str, asked: str) -> None:
        self.name = name
        self.asked = asked

    @property
    def renamed(self) -> bool:
        return self.name != self.asked


class LoginRefused(Record):
    """The server refused the login (``verdict`` None: it closed without a word)."""

    __slots__ = ("asked", "verdict")

    def __init__(self, asked: str, verdict: Refusal | None) -> None:
        self.asked = asked
        self.verdict = verdict


class Replied(Record):
    """A reply paired with the request it answers."""

    __slots__ = ("request", "event")

    def __init__(self, request: Request, event: p.ServerEvent) -> None:
        self.request = request
        self.event = event


class LineTooLong(Record):
    """A server line longer than the client's cap was skipped."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        self.limit = limit


class Disconnected(Record):
    """The connection ended; ``unanswered`` lists requests that got no reply."""

    __slots__ = ("unanswered",)

    def __init__(self, unanswered: tuple[Request, ...] = ()) -> None:
        self.unanswered = unanswered


class Deliveries(list[tuple[str, str]]):
    """The messages of consecutive ``DELIVERY`` lines of one read, as ``(sender, body)``
    pairs: a flood of thousands of lines is one event, rendered in one pass."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Deliveries({super().__repr__()})"


def _single(event: p.ServerEvent | p.RawDelivery) -> Event:
    """A message as every message comes out of the session: in a :class:`Deliveries`."""
    return Deliveries([(event.sender, event.body)]) if isinstance(event, p.Delivery) else event


Event = (LoggedIn | LoginRefused | Replied | LineTooLong | Disconnected | Deliveries
         | p.ServerEvent | p.RawDelivery)
_SEND_OK = p.SendOk()
_SEND_OK_LINE = CURRENT.spelling[Word.SEND_OK]
_REFUSALS = _events(ANSWERS[Word.HELLO_FROM] - {Word.HELLO})
Refusal = p.InUse | p.Busy | p.BadRequestBody | p.BadRequestHeader
"""The events of :data:`_REFUSALS`, for the type checker."""


def _is_refusal(event: p.ServerEvent | p.RawDelivery) -> TypeGuard[Refusal]:
    """Whether ``event`` refuses a login (the table's answers to HELLO-FROM but HELLO)."""
    return type(event) in _REFUSALS


_WORD_REPLIES = tuple(_events(word for word in p.EVENTS if word not in WITH_BODY))
"""Replies of one word, which a close cannot cut short without our knowing."""


class State(enum.Enum):
    IDLE = "idle"
    LOGGING_IN = "logging in"
    LOGGED_IN = "logged in"
    CLOSED = "closed"


class SessionError(RuntimeError):
    """A call the session's state does not allow (a bug in the caller)."""


class ClientSession:
    """Login state machine, the FIFO of requests awaiting replies, and the framer.

    Lines that arrive before the login verdict are held and come out right
    after it, so an early DELIVERY is neither lost nor mistaken for a verdict.
    """

    _asked: str
    """The name :meth:`log_in` asked for."""

    def __init__(self, max_line: int = CLIENT_MAX_LINE) -> None:
        self.state = State.IDLE
        self.pending: deque[Request] = deque()
        self._unanswerable: set[type[p.ServerEvent]] = set()
        """Replies no request of :attr:`pending` or :attr:`passed_over` can answer, as a
        scan found: a flood of stray replies costs one scan, not one each (forgotten once a
        request one of them can answer is sent; a passed-over request was waiting first)."""
        self.passed_over: list[Request] = []
        """Requests the server went past: a reply to a later request came first, and the
        server answers in order, so none should come; a reply that answers no waiting
        request may still answer one of them (a server that answers out of order)."""
        self._framer = LineFramer(max_line, hand_over=p.SHORT_LINE)
        self._early: list[Event] = []
        self.verdict: LoggedIn | LoginRefused | None = None
        """The login verdict, once the server gave it (or closed without one)."""
        self.held = 0
        """Bytes of memory the lines held until the login verdict take."""

    def log_in(self, name: str) -> bytes:
        """The ``HELLO-FROM`` for ``name`` (raises ProtocolError for a bad name)."""
        if self.state is not State.IDLE:
            raise SessionError(f"cannot log in while {self.state.value}")
        data = p.encode_hello_from(name)
        self._asked = name
        self.state = State.LOGGING_IN
        return data

    def send(self, outgoing: Outgoing) -> Wire:
        """Register a request as waiting for its reply and return its bytes."""
        if self.state is not State.LOGGED_IN:
            raise SessionError(f"cannot send a request while {self.state.value}")
        request, wire = outgoing
        self.pending.append(request)
        if self._unanswerable:
            self._unanswerable -= _ANSWERS[request.header]
        return wire

    def unanswered(self) -> tuple[Request, ...]:
        """Every request without its reply, the ones passed over first (they are older)."""
        return (*self.passed_over, *self.pending)

    def receive_data(self, data: bytes) -> list[Event]:
        """Events for newly received bytes; ``b""`` means the server closed."""
        if self.state is State.CLOSED:
            return []
        if not data:
            return self._close()
        events: list[Event] = []
        lines = self._framer.feed(data)
        if self.state is State.LOGGED_IN:
            self._receive_logged_in(lines, events)
            return events
        for line in lines:
            if isinstance(line, OversizedLine):
                self._emit(events, LineTooLong(line.limit))
            else:
                if self.state is State.LOGGING_IN:
                    self.held += len(line) + HELD_LINE_COST
                self._on_line(events, p.parse_server_line(line))
        return events

    def _receive_logged_in(self, lines: list[Line | OversizedLine], events: list[Event]
                           ) -> None:
        """The lines of a read once logged in: the lines of a flood (a DELIVERY, the
        SEND-OK a SEND waits for) in a few steps, any other as :meth:`_on_line` says.
        Consecutive deliveries make one :class:`Deliveries`."""
        pending, delivery_head, send_ok = self.pending, p.DELIVERY_HEAD, _SEND_OK_LINE
        send = Word.SEND
        pairs: Deliveries | None = None
        for line in lines:
            if type(line) is bytes and line.startswith(delivery_head):
                pair = p.delivery_pair(line)
                if pair is not None:
                    if pairs is None:
                        pairs = Deliveries()
                        events.append(pairs)
                    pairs.append(pair)
                    continue
            pairs = None
            if line == send_ok and pending and pending[0].header is send:
                events.append(Replied(pending.popleft(), _SEND_OK))
            elif isinstance(line, OversizedLine):
                events.append(LineTooLong(line.limit))
            else:
                self._on_line(events, p.parse_server_line(line))

    def _on_line(self, events: list[Event], event: p.ServerEvent | p.RawDelivery) -> None:
        if self.state is State.LOGGING_IN:
            if isinstance(event, p.Hello):
                self.state = State.LOGGED_IN
                self._release(events, LoggedIn(event.name, self._asked))
            elif _is_refusal(event):
                self.state = State.CLOSED
                self._release(events, LoginRefused(self._asked, event))
            elif (isinstance(event, p.Delivery) and self._early
                  and type(self._early[-1]) is Deliveries):
                self._early[-1].append((event.sender, event.body))  # one event, as later
            else:
                self._early.append(_single(event))
        elif (type(event) in _REPLIES and not isinstance(event, p.RawDelivery)
              and (request := self._answered_by(event)) is not None):
            events.append(Replied(request, event))
        else:
            events.append(_single(event))

    def _answered_by(self, reply: p.ServerEvent) -> Request | None:
        """The request ``reply`` answers: the oldest of :attr:`pending` that the table lets
        it answer, the ones before it passed over (a LIST-OK that comes while the oldest
        request is a SEND answers the LIST after it: the SEND got none). With none waiting
        that it can answer, the oldest passed-over one it can (a server that answered out of
        order); else None (a reply that answers nothing)."""
        answers = type(reply)
        if answers in self._unanswerable:
            return None
        pending = self.pending
        for index, request in enumerate(pending):
            if answers in _ANSWERS[request.header]:
                self.passed_over += [pending.popleft() for _ in range(index)]
                return pending.popleft()
        for index, request in enumerate(self.passed_over):
            if answers in _ANSWERS[request.header]:
                return self.passed_over.pop(index)
        self._unanswerable.add(answers)
        return None

    def abandon_login(self) -> list[Event]:
        """Give up waiting for the verdict: the session closes; the lines held are returned."""
        if self.state is not State.LOGGING_IN:
            return []
        self.state = State.CLOSED
        early, self._early, self.held = self._early, [], 0
        return early

    def _emit(self, events: list[Event], event: Event) -> None:
        (self._early if self.state is State.LOGGING_IN else events).append(event)

    def _release(self, events: list[Event], verdict: LoggedIn | LoginRefused) -> None:
        """The verdict first, then what came before it."""
        self.verdict = verdict
        events.append(verdict)
        events.extend(self._early)
        self._early, self.held = [], 0

    def _close(self) -> list[Event]:
        """The server closed. A last reply cut short of its newline still counts when it is
        whole without it (IN-USE, SEND-OK...); a line with a body may be cut anywhere."""
        events: list[Event] = []
        cut = self._framer.rest()
        if cut and isinstance(reply := p.parse_server_line(cut), _WORD_REPLIES):
            self._on_line(events, reply)
        state, self.state = self.state, State.CLOSED
        if state is State.LOGGING_IN:
            self._release(events, LoginRefused(self._asked, None))
            return events
        if state is State.CLOSED:
            return events
        events.append(Disconnected(self.unanswered()))
        self.pending.clear()
        self.passed_over.clear()
        return events
