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
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, TextIO

from .. import protocol as p
from .. import texts
from ..defaults import DEFAULT_EXPECT_TIMEOUT, DEFAULT_REPLY_TIMEOUT
from ..engine import ClientEngine
from ..expect import Expectation, ExpectWindow
from ..frontend import EXIT_ERROR, EXIT_LOST, EXIT_OK, FrontEnd, Leave, Login
from ..sanitize import sanitize
from ..session import (
    Disconnected,
    Event,
    Outgoing,
    Request,
    ScriptLine,
    users_request,
)
from .output import ScriptOutput
from .progress import Progress

WINDOW = 4096
BATCH = 128


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


class ScriptOptions(NamedTuple):
    """How a script runs; ``stop_and_wait``: one request at a time, each sent once
    the one before has its reply."""

    user: str | None = None
    strict: bool = False
    expect_timeout: float = DEFAULT_EXPECT_TIMEOUT
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT
    batch_size: int = 1
    stop_and_wait: bool = False


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
        self.sent = self.answered = self.delivered = 0
        self._batch: list[Outgoing] = []
        self._barrier: Request | None = None
        self._last_event = time.monotonic()
        self._reader = 0
        """The thread that reads (it hands over each read's events)."""
        self._read_lines: list[texts.Fragments] | None = None
        """Lines shown by the events of the read under way, on the reader thread."""

    def run(self, lines: Iterator[tuple[int, str]]) -> int:
        user = self.options.user
        if user is None:
            first = next(lines, None)
            if first is None:
                return EXIT_OK
            user = first[1].strip()
        if user == "!quit":
            return EXIT_OK
        login = self.attempt_login(user)
        if isinstance(login, Leave):
            return login.status
        if login is Login.RETRY:  # a script has no one to ask for another name
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
        self.engine.close()
        return EXIT_ERROR if self.failed else EXIT_OK

    def _run_lines(self, lines: Iterator[tuple[int, str]]) -> None:
        """Run each line, sending up to ``batch_size`` requests per write."""
        for number, text in lines:
            if self._done.is_set():
                return
            if self.run_line(text, ScriptLine(number, _preview(text))) == EXIT_OK:
                break
            self.output.write_held()  # what the line showed (!help) goes out now
        self._send_batch()

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
        self.output.diagnostic(f"chatsh: line {number}: {message} Not sent: {sanitize(text)}\n")
        if self.options.strict or check:  # a check that cannot run fails, whatever --strict
            self._fail()

    def _fail(self) -> None:
        self.failed = True
        self._stop()

    def _stop(self) -> None:
        """End the run: no more lines are sent, a waiting !expect gives up."""
        self._done.set()
        self.window.wake()

    def show(self, *lines: texts.Fragments) -> None:
        if self._read_lines is not None and threading.get_ident() == self._reader:
            self._read_lines += lines  # the reader's: shown at the end of its read
            return
        self._show(lines)

    def _show(self, lines: Sequence[texts.Fragments]) -> None:
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

    def on_reply(self, request: Request | None, event: p.ServerEvent) -> None:
        if request is not None and not request.quiet:
            self.answered += 1
        super().on_reply(request, event)

    def on_delivery(self, event: p.Delivery) -> None:
        self.delivered += 1
        super().on_delivery(event)

    def on_users(self, request: Request | None, names: tuple[str, ...]) -> None:
        if request is not None and request is self._barrier:
            self._done.set()
        else:
            super().on_users(request, names)

    def on_error_reply(self, request: Request | None, message: str) -> None:
        if self.options.strict and not self.failed:
            line = request.line if request is not None else None
            where = f"line {line.number}: {sanitize(line.text)}" if line else "a reply"
            self.output.diagnostic(f"chatsh: {where}: {message}\n")
            self._fail()

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

    def _report_unanswered(self, requests: tuple[Request, ...]) -> None:
        if self.lost is not None:
            self.notice(texts.error(texts.CONNECTION_LOST))
        unanswered = [request.line for request in requests if request.line]
        if unanswered:
            report = [f"chatsh: {len(unanswered)} request(s) got no reply:"]
            report += [f"  line {line.number}: {sanitize(line.text)}" for line in unanswered]
            self.output.diagnostic("\n".join(report) + "\n")


def run(engine: ClientEngine, source: TextIO | list[str], options: ScriptOptions,
        runner_class: type[ScriptRunner] = ScriptRunner) -> int:
    """Run ``source`` (a file, a pipe, or the lines of ``-c``) with a runner of
    ``runner_class`` (the text one, or the JSON one); an exit status."""
    engine.window = 1 if options.stop_and_wait else WINDOW
    if _complete(source) and not options.stop_and_wait:
        options = options._replace(batch_size=BATCH)
    runner = runner_class(engine, sys.stdout, sys.stderr, options)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        status = runner.run(script_lines(source))
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


def _complete(source: TextIO | list[str]) -> bool:
    """A list's or a file's lines are all there: batching them delays nothing.

    A pipe's may not be: its lines are sent as they come."""
    if isinstance(source, list):
        return True
    try:
        return stat.S_ISREG(os.fstat(source.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False
