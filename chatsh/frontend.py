"""What the interactive shell and the script runner share, written once.

:class:`FrontEnd` turns engine events into the lines a user sees, judges a
login, and dispatches typed lines through the command registry. A mode
subclass says where lines go (:meth:`FrontEnd.show`, :meth:`FrontEnd.notice`)
and how requests leave (:meth:`FrontEnd.submit`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from itertools import starmap

from . import protocol as p
from . import texts
from .commands import (
    QUIT,
    CommandInput,
    InputError,
    MultiSendInput,
    SendInput,
    help_rows,
    parse_input,
)
from .engine import ClientEngine, ConnectError, HandshakeTimeout, LoginCancelled
from .expect import Expectation
from .names import name_problem
from .record import Record
from .sanitize import sanitize
from .session import (
    Deliveries,
    Disconnected,
    Event,
    LineTooLong,
    LoggedIn,
    LoginRefused,
    Outgoing,
    Replied,
    Request,
    ScriptLine,
    checked_message_request,
    users_request,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONNECT = 2
EXIT_LOST = 3


class Login(enum.Enum):
    """How a login attempt ended, when the session goes on."""

    IN = "logged in"
    RETRY = "refused: another name may be tried"
    CANCELLED = "cancelled while it waited: a name may be tried again"
    UNANSWERED = "closed without a verdict: a name may be tried again"


class Leave(Record):
    """A login attempt that ends the session, with this exit status."""

    __slots__ = ("status",)

    def __init__(self, status: int) -> None:
        self.status = status


def refusal_line(refused: LoginRefused) -> texts.Fragments:
    """The line to print for a refused login."""
    verdict, user = refused.verdict, refused.asked
    if isinstance(verdict, p.Busy):
        return texts.error(texts.SERVER_FULL)
    if isinstance(verdict, p.InUse):
        return texts.name_in_use(user)
    if isinstance(verdict, p.BadRequestBody):
        return texts.name_disallowed(user)
    if isinstance(verdict, p.BadRequestHeader):
        return texts.error(texts.BAD_HEADER)
    return texts.error(texts.CLOSED_AT_LOGIN)


SENT_LINE = [("class:dim", texts.SENT)]
"""The line of every SEND-OK, made once (no one changes a line once made): dim, as
time stamps are, for it is said of nearly every line typed."""


class FrontEnd:
    """Events to lines, login verdicts and command dispatch for one engine."""

    scripted = False
    """Whether script-only commands (``!expect``, ``!wait``) may run."""

    def __init__(self, engine: ClientEngine) -> None:
        self.engine = engine
        self.me = ""
        self.line: ScriptLine | None = None
        """The script line being run, named in replies to its requests."""
        self.partner: str | None = None
        """Who lines without ``@`` go to (``!to``), if anyone."""
        self.answered = self.delivered = 0
        """Replies to requests (not chatsh's own) and messages received so far."""

    # --- where things go: a mode overrides these --------------------------

    def show(self, *lines: texts.Fragments) -> None:
        raise NotImplementedError

    def notice(self, line: texts.Fragments) -> None:
        """A diagnostic, not chat text (a script sends it to stderr)."""
        self.show(line)

    def submit(self, outgoing: Outgoing) -> None:
        self.engine.submit([outgoing])

    def end_batch(self) -> None:
        """Called after the events of one network read."""

    def on_disconnected(self, event: Disconnected) -> None:
        raise NotImplementedError

    def on_users(self, request: Request | None, names: tuple[str, ...]) -> None:
        """A user list: one the user asked for is shown (chatsh's own only counts)."""
        if request is None or not request.quiet:
            self.show(*texts.user_list(names))

    def on_own_reply(self, request: Request, event: p.ServerEvent) -> None:
        """The reply to a request chatsh made itself (a quiet one, which the user did not
        type): nothing of it is ever shown, not even an error."""
        if isinstance(event, p.ListOk):
            self.on_users(request, event.names)

    def on_error_reply(self, request: Request | None, message: str) -> None:
        """An error reply (``BAD-DEST-USER``, ``BAD-RQST-*``) after it is shown."""

    def on_deliveries(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Messages, as ``(sender, body)`` pairs in the order they came."""
        self.delivered += len(pairs)
        if len(pairs) == 1:  # a message between replies (a script's echo)
            self.show(texts.delivery(*pairs[0]))
        else:
            self.show(*starmap(texts.delivery, pairs))

    def on_raw_delivery(self, event: p.RawDelivery) -> None:
        """A long printable ASCII body, still bytes: shown as any other here."""
        delivery = event.decoded()
        self.on_deliveries([(delivery.sender, delivery.body)])

    # --- login ---------------------------------------------------------------

    def attempt_login(self, name: str) -> Login | Leave:
        """Log in as ``name``: in, refused (try another name), or leave (a full server,
        no connection)."""
        name = name.strip()
        problem = name_problem(name)
        if problem:  # also catches commands such as !who or @bob
            self.show(texts.name_disallowed(name))
            self.notice(texts.name_rule(name, problem))
            return Login.RETRY
        try:
            verdict = self.engine.log_in(name, self.on_events)
        except LoginCancelled:
            self.show(texts.system("Login cancelled."))
            return Login.CANCELLED
        except (ConnectError, HandshakeTimeout) as exc:
            self.notice(texts.error(str(exc)))
            return Leave(EXIT_CONNECT)
        if isinstance(verdict, LoggedIn):
            return Login.IN
        if verdict.verdict is None:
            return Login.UNANSWERED
        return Leave(EXIT_ERROR) if isinstance(verdict.verdict, p.Busy) else Login.RETRY

    # --- typed lines -----------------------------------------------------------

    def run_line(self, text: str, line: ScriptLine | None = None) -> int | None:
        """Act on one typed line; an exit status means leave."""
        self.line = line
        parsed = parse_input(text, self.partner)
        if type(parsed) is SendInput:  # the common case, tested first
            self.send_message(parsed.destination, parsed.body)
        elif isinstance(parsed, MultiSendInput):
            for destination in parsed.destinations:
                self.send_message(destination, parsed.body)
        elif isinstance(parsed, InputError):
            self.reject(parsed.message, text, parsed.check)
        elif isinstance(parsed, CommandInput):
            if parsed.command.scripts_only and not self.scripted:
                self.reject(f"!{parsed.command.name} is for scripts (--script FILE or -c LINE).",
                            text)
            elif parsed.command.shell_only and self.scripted:
                self.reject(f"!{parsed.command.name} is for the interactive shell.", text)
            elif parsed.run(self) == QUIT:
                return EXIT_OK
        return None

    def reject(self, message: str, text: str, check: bool = False) -> None:
        """A line chatsh itself refuses (nothing is sent); ``check``: a check that
        cannot run."""
        self.show([("class:hint", message)])

    def send_message(self, destination: str, body: str) -> None:
        """Send a message parsed from a typed line (its name and body are valid)."""
        self.submit(checked_message_request(destination, body, self.line))

    def request_users(self) -> None:
        self.submit(users_request(self.line))

    def talk_to(self, partner: str | None) -> None:
        self.partner = partner
        self.show(texts.system(f"Lines without @ go to {sanitize(partner)} now; !to alone stops."
                               if partner else "Lines without @ go to nobody now."))

    def show_help(self) -> None:
        self.show(*(texts.help_row(column, what) for column, what in help_rows(self.scripted)))

    def expect(self, expectation: Expectation) -> None:
        raise NotImplementedError  # scripts only: run_line refuses it elsewhere

    def wait(self, seconds: float) -> None:
        raise NotImplementedError  # scripts only: run_line refuses it elsewhere

    def show_last(self, peer: str | None, count: int) -> None:
        raise NotImplementedError  # the shell only: run_line refuses it in scripts

    def search(self, text: str) -> None:
        raise NotImplementedError  # the shell only: run_line refuses it in scripts

    def mute(self, name: str, muted: bool) -> None:
        raise NotImplementedError  # the shell only: run_line refuses it in scripts

    # --- engine events (on the reader thread) ----------------------------------

    def on_events(self, events: list[Event]) -> None:
        """The events of one network read, then :meth:`end_batch`."""
        for event in events:
            self.on_event(event)
        self.end_batch()

    def on_event(self, event: Event) -> None:
        """Classify an engine event, once, into the call that renders it."""
        if isinstance(event, Deliveries):  # the event of a flood: tested first
            self.on_deliveries(event)
        elif isinstance(event, Replied):
            self.on_reply(event.request, event.event)
        elif isinstance(event, LoggedIn):
            self.on_logged_in(event)
        elif isinstance(event, LoginRefused):
            self.on_login_refused(event)
        elif isinstance(event, Disconnected):
            self.on_disconnected(event)
        elif isinstance(event, LineTooLong):
            self.on_line_too_long(event)
        elif isinstance(event, p.UnknownLine):
            self.on_unknown_line(event)
        elif isinstance(event, p.RawDelivery):
            self.on_raw_delivery(event)
        else:
            self.on_reply(None, event)

    def on_logged_in(self, event: LoggedIn) -> None:
        self.me = event.name
        self.show(texts.logged_in(event.name))
        if event.renamed:
            self.notice(texts.renamed(event.asked, event.name))

    def on_login_refused(self, event: LoginRefused) -> None:
        self.show(refusal_line(event))

    def on_line_too_long(self, event: LineTooLong) -> None:
        self.notice(texts.error(f"Skipped a server line longer than {event.limit} bytes."))

    def on_unknown_line(self, event: p.UnknownLine) -> None:
        self.notice(texts.unknown_line(event.text))

    def on_reply(self, request: Request | None, event: p.ServerEvent) -> None:
        if request is not None:
            if request.quiet:
                self.on_own_reply(request, event)
                return
            self.answered += 1
        if isinstance(event, p.ListOk):
            self.on_users(request, event.names)
            return
        message = texts.REPLY_TEXT.get(event.word)
        if message is None:
            return
        if message is texts.SENT:
            self.show(SENT_LINE)
        else:
            self.show(self.error_line(request, message))
            self.on_error_reply(request, message)

    def error_line(self, request: Request | None, message: str) -> texts.Fragments:
        """The line of an error reply (exactly the SPEC's text)."""
        return texts.error(message)
