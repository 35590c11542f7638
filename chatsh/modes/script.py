"""Script mode: run typed lines in batch, pipelined, reporting every reply.

Output is the interactive text, plain, on stdout in arrival order; diagnostics
go to stderr. At ``!quit`` or end of input a final ``LIST`` round trip is the
barrier after which every reply and every echo already sent has been printed.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TextIO

from .. import protocol as p
from .. import texts
from ..commands import InputError, SendInput, help_lines, parse_input
from ..engine import (
    ClientEngine,
    ConnectError,
    Disconnected,
    EngineEvent,
    HandshakeTimeout,
    LineTooLong,
    Replied,
    Request,
    Wire,
    message_request,
    users_request,
)
from ..sanitize import sanitize
from .outcomes import EXIT_CONNECT, EXIT_ERROR, EXIT_LOST, EXIT_OK, login_failure
from .progress import Progress

WINDOW = 4096
BATCH = 128
_BARRIER = object()


def _preview(text: str, limit: int = 200) -> str:
    """A script line as named in a report: long ones cut short."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def script_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Numbered lines that are not blank and not ``#`` comments."""
    number = 0
    for line in lines:  # no enumerate(): its cached tuple would keep a second copy
        number += 1
        text = line.rstrip("\r\n")
        del line  # a line may be megabytes: keep one copy, not two
        if text.strip() and not text.lstrip().startswith("#"):
            yield number, text


class ScriptRunner:
    """Feeds a script to a :class:`ClientEngine` and prints what comes back."""

    def __init__(self, engine: ClientEngine, out: TextIO, err: TextIO, strict: bool) -> None:
        self.engine = engine
        self.out = out
        self.err = err
        self.strict = strict
        self.failed = False
        self.lost: Disconnected | None = None
        self.batch_size = 1
        self.sent = 0
        self._done = threading.Event()

    def run(self, lines: Iterator[tuple[int, str]], user: str | None) -> int:
        if user is None:
            first = next(lines, None)
            if first is None:
                return EXIT_OK
            user = first[1].strip()
        if user == "!quit":
            return EXIT_OK
        status = self._login(user)
        if status is not None:
            return status
        self.engine.start(self._on_event, self.out.flush)
        with Progress(self.err, lambda: (self.sent, self.sent - self.engine.waiting)):
            try:
                self._send_all(lines)
                if not self._done.is_set():
                    self.engine.request_users(_BARRIER)
            except ConnectionError:
                pass
            self._done.wait()
        self.out.flush()
        if self.lost is not None:
            self._report_lost(self.lost)
            return EXIT_LOST
        self.engine.close()
        return EXIT_ERROR if self.failed else EXIT_OK

    def _login(self, user: str) -> int | None:
        if p.name_problem(user):  # also catches commands such as !who or @bob
            self._print(texts.name_disallowed(user))
            return EXIT_ERROR
        try:
            self.engine.connect()
            verdict = self.engine.login(user)
        except (ConnectError, HandshakeTimeout) as exc:
            print(f"chatsh: {exc}", file=self.err)
            return EXIT_CONNECT
        if isinstance(verdict, p.Hello):
            self._print(texts.logged_in(user))
            return None
        self.engine.close()
        self._print(login_failure(user, verdict)[1])
        return EXIT_ERROR

    def _send_all(self, lines: Iterator[tuple[int, str]]) -> None:
        """Send each line's request, up to ``batch_size`` of them per write."""
        batch: list[tuple[Request, Wire]] = []
        for number, text in lines:
            if self._done.is_set():
                return
            parsed = parse_input(text)
            if isinstance(parsed, InputError):
                print(f"chatsh: line {number}: {parsed.message} Not sent: {sanitize(text)}",
                      file=self.err)
                if self.strict:
                    self._fail()
                    return
            elif isinstance(parsed, SendInput):
                batch.append(message_request(parsed.destination, parsed.body,
                                             (number, _preview(text))))
            elif parsed.name == "who":
                batch.append(users_request((number, text.strip())))
            elif parsed.name == "help":
                self.out.write("\n".join(help_lines()) + "\n")
            elif parsed.name == "quit":
                break
            if len(batch) >= self.batch_size:
                self._submit(batch)
                batch = []
        if batch:
            self._submit(batch)

    def _submit(self, batch: list[tuple[Request, Wire]]) -> None:
        self.engine.submit(batch)
        self.sent += len(batch)

    def _fail(self) -> None:
        self.failed = True
        self._done.set()

    def _print(self, fragments: texts.Fragments) -> None:
        for _, text in fragments:
            self.out.write(text)
        self.out.write("\n")

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, Replied):
            self._on_reply(event.request.tag, event.event)
        elif isinstance(event, p.Delivery):
            self._print(texts.delivery(event.sender, event.body))
        elif isinstance(event, Disconnected):
            self.lost = event
            self._done.set()
        elif isinstance(event, LineTooLong):
            print(f"chatsh: skipped a server line longer than {event.limit} bytes", file=self.err)
        elif isinstance(event, p.UnknownLine):
            print(f"chatsh: ignored an unknown server line: {sanitize(event.text)}",
                  file=self.err)
        else:
            self._on_reply(None, event)

    def _on_reply(self, tag: object, event: p.ServerEvent) -> None:
        if isinstance(event, p.ListOk):
            if tag is _BARRIER:
                self._done.set()
                return
            for line in texts.user_list(event.names):
                self._print(line)
            return
        message = texts.REPLY_TEXT.get(type(event))
        if message is None:
            return
        self.out.write(message + "\n")
        if message is not texts.SENT and self.strict and not self.failed:
            where = f"line {tag[0]}: {sanitize(tag[1])}" if isinstance(tag, tuple) else "a reply"
            print(f"chatsh: {where}: {message}", file=self.err)
            self._fail()

    def _report_lost(self, lost: Disconnected) -> None:
        print(f"chatsh: {texts.CONNECTION_LOST}", file=self.err)
        unanswered = [r.tag for r in lost.unanswered if isinstance(r.tag, tuple)]
        if unanswered:
            print(f"chatsh: {len(unanswered)} request(s) got no reply:", file=self.err)
            for number, text in unanswered:
                print(f"  line {number}: {sanitize(text)}", file=self.err)


def run(engine: ClientEngine, source: TextIO, user: str | None, strict: bool) -> int:
    engine.window = WINDOW
    runner = ScriptRunner(engine, sys.stdout, sys.stderr, strict)
    if _is_regular_file(source):
        runner.batch_size = BATCH
    return runner.run(script_lines(source), user)


def _is_regular_file(source: TextIO) -> bool:
    """A file's lines are all there: batching them delays nothing (a pipe's may not be)."""
    try:
        return stat.S_ISREG(os.fstat(source.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False
