"""Script mode: run typed lines in batch, pipelined, reporting every reply.

Output is the interactive text, plain, on stdout in arrival order; diagnostics
go to stderr. At ``!quit`` or end of input a final ``LIST`` round trip is the
barrier after which every reply and every echo already sent has been printed.
``!expect`` and ``!wait`` are barriers too: later lines wait for them.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from io import BufferedIOBase

from .. import protocol as p
from .. import texts
from ..commands import parse_long_message
from ..defaults import DEFAULT_EXPECT_TIMEOUT, DEFAULT_REPLY_TIMEOUT
from ..engine import ClientEngine
from ..expect import Expectation, ExpectWindow
from ..framing import OversizedLine
from ..frontend import EXIT_ERROR, EXIT_LOST, EXIT_OK, FrontEnd, Leave, Login
from ..record import Record
from ..sanitize import sanitize
from ..session import (
    Disconnected,
    Event,
    Outgoing,
    Request,
    ScriptLine,
    long_message_request,
    users_request,
)
from .collector import quiet_collector
from .output import ScriptOutput
from .progress import Progress
from .script_source import PREVIEW, preview, read_lines, script_lines

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    from typing import TextIO

WINDOW = 4096
BATCH = 128


BARRIER_UNANSWERED = "  the final LIST chatsh sends to know every reply has come"
"""How a report of requests without a reply names the final barrier..."""
BARRIER_ALONE = (" (the server may not know LIST, or took it for part of the line before it: "
                 "--stop-and-wait sends one request at a time)")
"""... and what it adds when the barrier alone got no reply."""
PASSED_OVER = "the server answered later requests but not these:"
"""The heading of the lines whose requests the server went past (it answers in order)."""
class ScriptOptions(Record):
    """How a script runs; ``stop_and_wait``: one request at a time, each sent once
    the one before has its reply."""

    __slots__ = ("user", "strict", "expect_timeout", "reply_timeout", "batch_size",
                 "stop_and_wait")

    def __init__(self, user: str | None = None, strict: bool = False,
                 expect_timeout: float = DEFAULT_EXPECT_TIMEOUT,
                 reply_timeout: float = DEFAULT_REPLY_TIMEOUT, batch_size: int = 1,
                 stop_and_wait: bool = False) -> None:
        self.user, self.strict = user, strict
        self.expect_timeout, self.reply_timeout = expect_timeout, reply_timeout
        self.batch_size, self.stop_and_wait = batch_size, stop_and_wait


class ScriptRunner(FrontEnd):
    """Feeds a script to a :class:`ClientEngine` and prints what comes back.

    Every line of output goes through :meth:`show` and :meth:`notice`, under one
    lock, so the reader thread and the sending thread never tear a line apart.
    Shown lines also enter the window that ``!expect`` searches.
    """

    scripted = True
    echo = True
    """Whether shown lines go to stdout (JSON output replaces them)."""

    def __init__(self, engine: ClientEngine, out: TextIO, err: TextIO,
                 options: ScriptOptions) -> None:
        super().__init__(engine)
        self._done = threading.Event()
        self.window = ExpectWindow()
        self.output = ScriptOutput(out, err, self._stop)
        self.options = options
        self.failed = False
        self.lost: Disconnected | None = None
        self.sent = 0
        self._batch: list[Outgoing] = []
        self._barrier: Request | None = None
        self._last_event = time.monotonic()
        self._reader = 0
        """The thread that reads (it hands over each read's events)."""
        self._read_lines: list[texts.ScriptLineOut] | None = None
        """Lines shown by the events of the read under way, on the reader thread."""

    def run(self, lines: Iterator[tuple[int, str | bytearray | OversizedLine]]) -> int:
        user = self.options.user
        if user is None:
            first = next(lines, None)
            if first is None:
                return EXIT_OK
            text = first[1]
            if isinstance(text, OversizedLine):
                self._refuse_oversized(first[0], text)
                return EXIT_ERROR
            user = (text if isinstance(text, str) else text.decode("ascii")).strip()
            if user == "!quit":  # typed as the first line; --user '!quit' is a name
                return EXIT_OK
        login = self.attempt_login(user)
        if isinstance(login, Leave):
            return login.status
        if login is not Login.IN:  # a script has no one to ask for another name
            return EXIT_ERROR
        with Progress(self.output.err, self.output.diagnostic,
                      lambda: (self.sent, self.sent - self.engine.waiting)):
            try:
                self._run_lines(lines)
                if not self._done.is_set():
                    barrier = users_request(quiet=True)
                    self._barrier = barrier[0]
                    self.engine.submit([barrier])
            except ConnectionError:
                pass
            silent = self._wait_for_replies()
        self.output.flush()
        failed_output = self.output.exit_status()
        if failed_output is not None:
            self.engine.close()
            return failed_output
        if self.lost is not None:
            self._report_unanswered(self.lost.unanswered)
            return EXIT_LOST
        if silent:
            self.output.diagnostic(f"chatsh: no reply from the server in "
                                   f"{self.options.reply_timeout:g} s\n")
            self._report_unanswered(silent)
            return EXIT_LOST
        passed_over = self.engine.passed_over()
        if passed_over:
            self._report_unanswered(passed_over, PASSED_OVER)
            return EXIT_LOST
        self.engine.leave()
        return EXIT_ERROR if self.failed else EXIT_OK

    def _run_lines(self, lines: Iterator[tuple[int, str | bytearray | OversizedLine]]
                   ) -> None:
        """Run each line, sending up to ``batch_size`` requests per write."""
        for number, text in lines:
            if self._done.is_set():
                return
            if isinstance(text, OversizedLine):
                self._refuse_oversized(number, text)
                continue
            line = ScriptLine(number, text if type(text) is str and len(text) <= PREVIEW
                              else preview(text))
            if isinstance(text, bytearray):
                text = self._run_long_line(text, line)
            if text and self.run_line(text, line) == EXIT_OK:
                break
            self.output.write_held()  # what the line showed (!help) goes out now
        self._send_batch()

    def _refuse_oversized(self, number: int, line: OversizedLine) -> None:
        """A line past --max-line: said, not sent; its bytes were never kept."""
        self.line = ScriptLine(number, "")
        self.reject(f"the line is longer than {line.limit} bytes (--max-line).",
                    "the whole line")

    def _run_long_line(self, data: bytearray, line: ScriptLine) -> str:
        """Send a long ASCII line that is a message from its bytes, as read; any other
        is decoded, to be run as every line is (the text returned)."""
        message = parse_long_message(data, self.partner)
        if message is None:
            return data.decode("ascii")
        self.line = line
        destination, start = message
        self.submit(long_message_request(destination, memoryview(data)[start:], line))
        return ""

    def submit(self, outgoing: Outgoing) -> None:
        self._batch.append(outgoing)
        if len(self._batch) >= self.options.batch_size:
            self._send_batch()

    def _send_batch(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self.on_sending([request for request, _ in batch])
            self.engine.submit(batch)

    def on_sending(self, requests: list[Request]) -> None:
        """Requests about to be written (their replies may come at once)."""
        self.sent += len(requests)

    def finish(self, status: int) -> int:
        """The last word before exit (a summary, in JSON output)."""
        return status

    def expect(self, expectation: Expectation) -> None:
        """Send what is batched, then wait until a shown line matches."""
        self._send_batch()
        timeout = self.options.expect_timeout
        matched = self.window.wait_for(expectation, timeout, self._done)
        if matched is not None:
            self.on_expectation(expectation, matched)
        elif not self._done.is_set():
            self.on_expectation(expectation, None)
            where = f"line {self.line.number}: " if self.line else ""
            report = [f"chatsh: {where}!expect {sanitize(expectation.text)}: "
                      f"not seen within {timeout:g} s; the last lines shown:"]
            report += [f"  {sanitize(line)}" for line in self.window.last(5)] or ["  (none)"]
            self.output.diagnostic("\n".join(report) + "\n")
            self._fail()

    def on_expectation(self, expectation: Expectation, matched: str | None) -> None:
        """An expectation met (``matched`` is the line) or missed (None)."""

    def wait(self, seconds: float) -> None:
        """Send what is batched, then pause; replies keep printing meanwhile."""
        self._send_batch()
        self._done.wait(seconds)

    def reject(self, message: str, text: str, check: bool = False) -> None:
        number = self.line.number if self.line else 0
        self.output.diagnostic(f"chatsh: line {number}: {message} "
                               f"Not sent: {sanitize(preview(text))}\n")
        if self.options.strict or check:  # a check that cannot run fails, whatever --strict
            self._fail()

    def _fail(self) -> None:
        self.failed = True
        self._stop()

    def _stop(self) -> None:
        """End the run: no more lines are sent, a waiting !expect gives up."""
        self._done.set()
        self.window.wake()

    def show(self, *lines: texts.ScriptLineOut) -> None:
        if self._read_lines is not None and threading.get_ident() == self._reader:
            self._read_lines += lines  # the reader's: shown at the end of its read
            return
        self._show(lines)

    def _show(self, lines: Sequence[texts.ScriptLineOut]) -> None:
        self.window.add(*lines)
        if self.echo:
            self.output.lines(lines)

    def notice(self, line: texts.Fragments) -> None:
        self.output.diagnostic(f"chatsh: {texts.plain(line)}\n")

    def end_batch(self) -> None:
        self.output.flush()

    def on_events(self, events: list[Event]) -> None:
        """A read's events; the lines they show go out together."""
        if events:
            self._last_event = time.monotonic()
        self._reader, self._read_lines = threading.get_ident(), []
        try:
            for event in events:
                self.on_event(event)
        finally:
            lines, self._read_lines = self._read_lines, None
            if lines:
                self._show(lines)
        self.end_batch()

    def on_raw_delivery(self, event: p.RawDelivery) -> None:
        """A long printable ASCII body goes to stdout as the bytes that came."""
        if not self.echo:
            super().on_raw_delivery(event)
            return
        self.delivered += 1
        self.show(texts.raw_delivery(event.sender, event.body))

    def on_own_reply(self, request: Request, event: p.ServerEvent) -> None:
        """Any reply to the final barrier ends the run: a server without LIST answers
        it with an error, and every reply before it has come all the same."""
        if request is self._barrier:
            self._done.set()
        else:
            super().on_own_reply(request, event)

    def on_error_reply(self, request: Request | None, message: str) -> None:
        """With --strict, the first error fails the run, naming its line (and whom a
        SEND was for); a SEND to one of several names on a line that failed is named
        on stderr in any case, since stdout's exact line cannot say which it was."""
        line = request.line if request is not None else None
        to = sanitize(request.destination) if request and request.destination else None
        if self.options.strict and not self.failed:
            where = f"line {line.number}: {sanitize(line.text)}" if line else "a reply"
            self.output.diagnostic(f"chatsh: {where}: {message}{f' (@{to})' if to else ''}\n")
            self._fail()
        elif to and line and "," in line.text.lstrip().partition(" ")[0]:
            self.output.diagnostic(f"chatsh: line {line.number}: @{to}: {message}\n")

    def on_disconnected(self, event: Disconnected) -> None:
        self.lost = event
        self._stop()

    def _wait_for_replies(self) -> tuple[Request, ...]:
        """Wait until the run is done; the requests still unanswered if the server
        fell silent for ``reply_timeout`` seconds with replies owed, else ()."""
        limit = self.options.reply_timeout
        while not self._done.wait(max(self._last_event + limit - time.monotonic(), 0.01)):
            if self.engine.waiting and time.monotonic() - self._last_event >= limit:
                unanswered = self.engine.unanswered()
                self.engine.close()
                return unanswered
        return ()

    def _report_unanswered(self, requests: tuple[Request, ...], heading: str = "") -> None:
        """Name the lines of ``requests``, under ``heading`` (by default their count)."""
        if self.lost is not None:
            self.notice(texts.error(texts.CONNECTION_LOST))
        unanswered = [f"  line {request.line.number}: {sanitize(request.line.text)}"
                      if request.line else BARRIER_UNANSWERED for request in requests
                      if request.line or request is self._barrier]
        if unanswered == [BARRIER_UNANSWERED]:  # every line had its reply: why not this?
            unanswered[0] += BARRIER_ALONE
        if unanswered:
            heading = heading or f"{len(unanswered)} request(s) got no reply:"
            report = [f"chatsh: {heading}", *unanswered]
            self.output.diagnostic("\n".join(report) + "\n")


def run(engine: ClientEngine, source: BufferedIOBase | list[str], options: ScriptOptions,
        runner_class: type[ScriptRunner] = ScriptRunner) -> int:
    """Run ``source`` (a file, a pipe, or the lines of ``-c``) with a runner of
    ``runner_class`` (the text one, or the JSON one); an exit status."""
    engine.window = 1 if options.stop_and_wait else WINDOW
    if _complete(source) and not options.stop_and_wait:
        options = options.replaced(batch_size=BATCH)
    runner = runner_class(engine, sys.stdout, sys.stderr, options)
    quiet_collector()
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        status = runner.run(script_lines(source, login=options.user is None)
                            if isinstance(source, list)
                            else read_lines(source, engine.max_line))
    except KeyboardInterrupt:
        status = 128 + signal.SIGINT
    except _Terminated:
        status = 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
    runner.output.flush()
    return runner.finish(status)


class _Terminated(Exception):
    """SIGTERM arrived: the run ends as after Ctrl-C, with its summary."""


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated


def _complete(source: BufferedIOBase | list[str]) -> bool:
    """A list's or a file's lines are all there: batching them delays nothing.

    A pipe's may not be: its lines are sent as they come."""
    if isinstance(source, list):
        return True
    try:
        return stat.S_ISREG(os.fstat(source.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False
