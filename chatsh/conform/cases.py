"""The case registry and what a case may use; each id is stable across releases.

A case has a level, as h2spec's strict mode has: ``required`` cases check what the
protocol table and the assignment's own words demand and decide the exit status;
``recommended`` ones report a warning (a failure under ``--strict``); ``policy``
cases check chatsh's own stricter rules and run only when that profile is asked for.
"""

from __future__ import annotations

import enum
import itertools
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..names import ECHOBOT
from ..words import CURRENT, OLDER, Version, Word
from .probe import CaseFailure, CaseSkipped, DeadlinePassed, Probe, is_line, spelt, split_names

NO_ECHOBOT = "the server has no echobot in its LIST (the course's reference server has none)"


class Level(enum.Enum):
    REQUIRED = "required"
    RECOMMENDED = "recommended"
    POLICY = "policy"


@dataclass
class Context:
    """What a case may use: the server's address, its deadline, fresh names."""

    host: str
    port: int
    timeout: float
    max_clients: int | None = None
    peer: tuple[str, int] | None = None
    """Another node of the same cluster, for the ``peer`` cases."""
    tls: ssl.SSLContext | None = None
    """Speak TLS to the server (and the peer) with this context."""
    deadline: float = 0.0
    probes: list[Probe] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What a case saw that is worth saying even when it passes."""
    _echobot: bool | None = None
    _no_echobot: str = NO_ECHOBOT
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def probe(self, on_peer: bool = False) -> Probe:
        """A connection to the server, or with ``on_peer`` to the other node."""
        host, port = self.peer if on_peer and self.peer else (self.host, self.port)
        probe = Probe(host, port, self.deadline, tls=self.tls)
        self.probes.append(probe)
        return probe

    def user(self, prefix: str = "cf", on_peer: bool = False) -> tuple[str, Probe]:
        """A fresh logged-in user."""
        name = self.name(prefix)
        probe = self.probe(on_peer)
        probe.login(name)
        return name, probe

    def name(self, prefix: str = "cf") -> str:
        return f"{prefix}{os.getpid() % 10000}x{next(self._counter)}"

    def note(self, text: str) -> None:
        self.notes.append(text)

    def ask(self, word: Word, *parts: str, version: Version = CURRENT
            ) -> tuple[bytes | None, str]:
        """The request ``word`` with ``parts`` (see :meth:`Probe.say`) on a fresh user's
        connection: the answer (None for none), and what a report says arrived."""
        _, probe = self.user("ask")
        probe.say(word, *parts, version=version)
        wait = self.timeout / 4
        try:
            answer = probe.read_line(wait)
        except TimeoutError:
            return None, f"no answer in {wait:.1f} s"
        return answer, probe.arrived(answer)

    def has_echobot(self) -> bool:
        """Whether the server has an echobot (looked up once per run): its LIST says so,
        or, when LIST gets no LIST-OK (as on a server of the older version), a SEND to
        echobot is answered SEND-OK or with its echo."""
        if self._echobot is None:
            listed, listed_text = self.ask(Word.LIST)
            if listed is not None and is_line(listed, Word.LIST_OK):
                self._echobot = ECHOBOT in (n.strip() for n in split_names(listed))
                return self._echobot
            question = "are you there?"
            answer, answer_text = self.ask(Word.SEND, ECHOBOT, question)
            self._echobot = answer in (spelt(Word.SEND_OK), spelt(Word.DELIVERY, ECHOBOT, question))
            self._no_echobot = (f"the server has no echobot: LIST got {listed_text}, "
                                f"and SEND echobot got {answer_text}")
        return self._echobot

    def speaks_older_version(self) -> bool:
        """Whether the server speaks the protocol's older version: LIST is an unknown
        header to it, and WHO gets WHO-OK."""
        listed, _ = self.ask(Word.LIST)
        if listed != spelt(Word.BAD_RQST_HDR):
            return False
        who, _ = self.ask(Word.LIST, version=OLDER)
        return is_line(who, Word.LIST_OK, version=OLDER)

    def need_echobot(self) -> None:
        """Skip the case unless the server has an echobot."""
        if not self.has_echobot():
            raise CaseSkipped(self._no_echobot)

    def close_all(self) -> None:
        """Close every connection of the case the way a polite client does, so that the
        server has freed their names before the next case starts."""
        for probe in self.probes:
            probe.finish()
        ends = time.monotonic() + min(self.timeout, 1.0)
        for probe in self.probes:
            probe.drain(ends)
            probe.close()
        self.probes.clear()


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    run: Callable[[Context], None]
    level: Level = Level.REQUIRED
    weight: float = 1.0
    """How many timeouts the case may take (large messages take longer)."""
    peer: bool = False
    """Checks two nodes of a cluster (runs only when one is given)."""


CASES: list[Case] = []


CaseRun = Callable[[Context], None]


def case(case_id: str, name: str, level: Level = Level.REQUIRED, weight: float = 1.0,
         peer: bool = False) -> Callable[[CaseRun], CaseRun]:
    """Register the decorated function as a conformance case."""

    def register(run: Callable[[Context], None]) -> Callable[[Context], None]:
        CASES.append(Case(case_id, name, run, level, weight, peer))
        return run
    return register


def ask_until(ask: Callable[[], Probe], done: Callable[[bytes], bool], ctx: Context,
              expected: str) -> None:
    """Ask again and again (``ask`` sends a request and gives the probe that reads its
    answer) until an answer is ``done`` or the case's deadline passes; the failure says
    what the attempts got, in order, and over how long."""
    start = time.monotonic()
    answers: list[str] = []
    sent: list[str] = []
    while time.monotonic() <= ctx.deadline:
        try:
            probe = ask()
        except DeadlinePassed:
            break
        sent = probe.sent
        try:
            line = probe.read_line()
        except DeadlinePassed:
            answers.append("no answer before the deadline")
            break
        if line is not None and done(line):
            return
        answers.append(probe.arrived(line))
        time.sleep(0.02)
    raise CaseFailure(expected, f"{len(answers)} attempts over {time.monotonic() - start:.1f} "
                      f"s: {tally(answers)}", sent)


def tally(answers: list[str]) -> str:
    """The answers in order, each run of the same one said once with its count."""
    runs = [(answer, len(list(same))) for answer, same in itertools.groupby(answers)]
    if len(runs) == 1 and runs[0][1] > 1:
        return f"{runs[0][0]} each time"
    return ", then ".join(answer if count == 1 else f"{answer} ({count} times)"
                          for answer, count in runs) or "no answer"


def refused_header(line: Callable[[Context], bytes]) -> CaseRun:
    """A logged-in user sends ``line`` (given without its newline): BAD-RQST-HDR, and the
    session goes on, which a SEND to the user itself shows (the protocol's core: no LIST,
    which a server of the older version lacks)."""
    def run(ctx: Context) -> None:
        name, probe = ctx.user()
        probe.send(line(ctx) + b"\n")
        probe.expect(spelt(Word.BAD_RQST_HDR))
        probe.say(Word.SEND, name, "still here")
        probe.expect_one_of((spelt(Word.SEND_OK), spelt(Word.DELIVERY, name, "still here")),
                            "SEND-OK (or the DELIVERY) for a SEND to itself after the error: "
                            "the session goes on")
    return run
