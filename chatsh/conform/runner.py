"""Run the conformance cases, each under its own deadline, and collect outcomes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ..words import Word
from . import login_cases, message_cases, peer_cases, stream_cases  # noqa: F401  (register)
from .cases import CASES, Case, Context, Level
from .probe import CaseFailure, CaseSkipped, escaped

PROFILES = ("protocol", "chatsh")
"""``protocol`` checks what the protocol requires and recommends; ``chatsh`` adds
chatsh's own name policies."""
RESULTS = ("pass", "fail", "warn", "skip", "not run")
SENT_KEPT = 20
"""Lines an outcome keeps of what a case sent: the last ones."""
OLDER_VERSION = ("the server speaks the protocol's older version (LIST gets BAD-RQST-HDR, "
                 "WHO gets WHO-OK): the cases that need LIST or BAD-DEST-USER fail on it")


@dataclass(frozen=True)
class Outcome:
    """What one case found. Every report (text, JSON, JUnit) is made from outcomes only,
    and an outcome holds its texts escaped and cut: what the server under test sent
    reaches no output raw, whichever case took it in."""

    id: str
    name: str
    level: str
    result: str
    """One of RESULTS: ``warn`` is a recommended case that failed (without --strict)."""
    seconds: float
    expected: str = ""
    got: str = ""
    sent: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("expected", "got"):
            object.__setattr__(self, name, escaped(getattr(self, name)))
        sent = self.sent if len(self.sent) <= SENT_KEPT else (
            f"... {len(self.sent) - SENT_KEPT + 1} earlier lines", *self.sent[1 - SENT_KEPT:])
        object.__setattr__(self, "sent", tuple(map(escaped, sent)))
        object.__setattr__(self, "notes", tuple(map(escaped, self.notes)))


def select(patterns: list[str] | None = None, with_peer: bool = False,
           profile: str = "protocol") -> list[Case]:
    """Cases whose id or name contains one of ``patterns`` (all of them without any);
    the two-node cases only ``with_peer``, the policy cases only in the chatsh profile."""
    return [c for c in CASES if (with_peer or not c.peer)
            and (profile == "chatsh" or c.level is not Level.POLICY)
            and (not patterns or any(p in c.id or p in c.name for p in patterns))]


def run_case(item: Case, ctx: Context, strict: bool = False) -> Outcome:
    start = time.monotonic()
    ctx.deadline = start + ctx.timeout * item.weight
    ctx.notes = []
    missed = "fail" if strict or item.level is not Level.RECOMMENDED else "warn"
    try:
        item.run(ctx)
    except CaseFailure as failure:
        return _outcome(item, ctx, missed, start, failure.expected, failure.got, failure.sent)
    except CaseSkipped as skipped:
        return _outcome(item, ctx, "skip", start, got=str(skipped))
    except OSError as exc:
        return _outcome(item, ctx, missed, start, "a working connection",
                        f"{type(exc).__name__}: {exc}")
    finally:
        ctx.close_all()
    return _outcome(item, ctx, "pass", start)


def _outcome(item: Case, ctx: Context, result: str, start: float, expected: str = "",
             got: str = "", sent: list[str] | None = None) -> Outcome:
    return Outcome(item.id, item.name, item.level.value, result, time.monotonic() - start,
                   expected, got, tuple(sent or ()), tuple(ctx.notes))


def answering(ctx: Context) -> str:
    """Empty while the server still answers a login in time, else what went wrong."""
    ctx.deadline = time.monotonic() + ctx.timeout
    try:
        probe = ctx.probe()
        probe.say(Word.HELLO_FROM, ctx.name("alive"))
        line = probe.read_line()
    except CaseFailure as failure:
        return failure.got
    finally:
        ctx.close_all()
    return "it closed a new connection without a word" if line is None else ""


def server_notes(ctx: Context) -> list[str]:
    """What to say once about the server, before any case: which version it speaks."""
    ctx.deadline = time.monotonic() + ctx.timeout
    try:
        return [OLDER_VERSION] if ctx.speaks_older_version() else []
    except (CaseFailure, OSError):
        return []  # the cases will say what is wrong
    finally:
        ctx.close_all()


def run_all(cases: list[Case], ctx: Context, strict: bool = False) -> Iterator[Outcome]:
    """Every case in turn. When a case fails and the server then no longer answers a new
    login, that case says so and the rest are ``not run``."""
    gone = False
    for item in cases:
        if gone:
            yield Outcome(item.id, item.name, item.level.value, "not run", 0.0,
                          got="the server stopped answering")
            continue
        outcome = run_case(item, ctx, strict)
        if outcome.result in ("fail", "warn") and (trouble := answering(ctx)):
            gone = True
            outcome = replace(outcome, notes=(
                *outcome.notes, f"the server stopped answering: a new login got {trouble}; "
                "no further case was run"))
        yield outcome
