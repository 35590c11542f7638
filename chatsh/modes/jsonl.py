"""``--json``: a script's events as JSON Lines on stdout, one object each.

Every object has ``event``; requests and their replies carry ``line``, the
script line number (null for a reply nothing was waiting for), and those of a
SEND ``to``, its name (a line may send to several). Text from the
network is given as received, JSON-escaped (non-ASCII as ``\\uXXXX``), so the
stream is safe on a terminal and exact for programs. Diagnostics stay on stderr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .. import protocol as p
from ..commands import help_lines
from ..engine import ClientEngine
from ..expect import Expectation
from ..session import (
    Disconnected,
    LineTooLong,
    LoggedIn,
    LoginRefused,
    Request,
    ScriptLine,
)
from ..words import ANSWERS, Word
from .script import ScriptOptions, ScriptRunner

NAMED_OTHERWISE = {Word.LIST_OK: "users", Word.BAD_RQST_HDR: "bad-request-header",
                   Word.BAD_RQST_BODY: "bad-request-body"}
REPLY_EVENTS: dict[Word | None, str] = {
    word: NAMED_OTHERWISE.get(word, word.name.lower().replace("_", "-"))
    for word in ANSWERS[Word.LIST] | ANSWERS[Word.SEND]}
"""The event of each reply to a LIST or a SEND: its word in lower case (``send-ok``,
``bad-dest-user``), but for the three :data:`NAMED_OTHERWISE`."""
REFUSALS: dict[Word | None, str] = {
    Word.IN_USE: "in-use",
    Word.BUSY: "busy",
    Word.BAD_RQST_BODY: "bad-name",
    Word.BAD_RQST_HDR: "bad-header",
    None: "closed",
}
"""The reason of each refused login, by the refusal's word (None: closed without one)."""


def _number(line: ScriptLine | None) -> int | None:
    return line.number if line else None


class JsonScriptRunner(ScriptRunner):
    """A script runner that reports events as JSON objects instead of text lines."""

    echo = False

    def __init__(self, engine: ClientEngine, out: TextIO, err: TextIO,
                 options: ScriptOptions) -> None:
        super().__init__(engine, out, err, options)
        self._started = time.monotonic()

    def emit(self, event: str, **fields: Any) -> None:
        self.output.text(json.dumps({"event": event, **fields}) + "\n")

    # each hook writes its object, then renders the text as the text runner does (not
    # printed: it feeds the !expect window, so checks see the same lines either way)

    def on_reply(self, request: Request | None, event: p.ServerEvent) -> None:
        name = REPLY_EVENTS.get(event.word)
        if name is not None and (request is None or not request.quiet):
            fields: dict[str, Any] = {"line": _number(request.line if request else None)}
            if request is not None and request.destination is not None:
                fields["to"] = request.destination
            if isinstance(event, p.ListOk):
                fields["users"] = list(event.names)
            self.emit(name, **fields)
        super().on_reply(request, event)

    def on_deliveries(self, pairs: Sequence[tuple[str, str]]) -> None:
        for sender, body in pairs:
            self.emit("delivery", **{"from": sender, "body": body})
        super().on_deliveries(pairs)

    def on_logged_in(self, event: LoggedIn) -> None:
        self.emit("logged-in", name=event.name, asked=event.asked)
        super().on_logged_in(event)

    def on_login_refused(self, event: LoginRefused) -> None:
        refusal = None if event.verdict is None else event.verdict.word
        self.emit("login-refused", name=event.asked, reason=REFUSALS[refusal])
        super().on_login_refused(event)

    def on_disconnected(self, event: Disconnected) -> None:
        self.emit("connection-lost", unanswered=[
            {"line": request.line.number, "text": request.line.text}
            for request in event.unanswered if request.line])
        super().on_disconnected(event)

    def on_line_too_long(self, event: LineTooLong) -> None:
        self.emit("line-too-long", limit=event.limit)
        super().on_line_too_long(event)

    def on_unknown_line(self, event: p.UnknownLine) -> None:
        self.emit("unknown-line", text=event.text)
        super().on_unknown_line(event)

    def on_sending(self, requests: list[Request]) -> None:
        super().on_sending(requests)
        for request in requests:
            to = {} if request.destination is None else {"to": request.destination}
            self.emit("sent", line=_number(request.line),
                      request=request.header.name,
                      text=request.line.text if request.line else None, **to)

    def reject(self, message: str, text: str, check: bool = False) -> None:
        self.emit("rejected", line=_number(self.line), text=text, reason=message)
        super().reject(message, text, check)

    def show_help(self) -> None:
        self.emit("help", lines=help_lines())
        super().show_help()

    def on_expectation(self, expectation: Expectation, matched: str | None) -> None:
        fields = {"line": _number(self.line), "expected": expectation.text}
        if matched is None:
            self.emit("expect-missed", **fields, timeout=self.options.expect_timeout,
                      last=self.window.last(5))
        else:
            self.emit("expect-met", **fields, matched=matched)

    def finish(self, status: int) -> int:
        self.emit("summary", sent=self.sent, answered=self.answered,
                  delivered=self.delivered,
                  seconds=round(time.monotonic() - self._started, 6), status=status)
        self.output.flush()
        return status
