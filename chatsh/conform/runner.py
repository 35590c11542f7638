"""Run the conformance cases, each under its own deadline, and collect outcomes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import peer_cases, stream_cases  # noqa: F401  (register their cases)
from .cases import CASES, Case, Context
from .probe import CaseFailure, CaseSkipped


@dataclass
class Outcome:
    id: str
    name: str
    result: str
    """``pass``, ``fail`` or ``skip``."""
    seconds: float
    expected: str = ""
    got: str = ""
    sent: list[str] = field(default_factory=list)


def select(pattern: str | None, with_peer: bool = False) -> list[Case]:
    """Cases whose id or name contains ``pattern`` (all of them without one); the
    two-node cases only ``with_peer``."""
    return [c for c in CASES if (with_peer or not c.peer)
            and (not pattern or pattern in c.id or pattern in c.name)]


def run_case(item: Case, ctx: Context) -> Outcome:
    start = time.monotonic()
    ctx.deadline = start + ctx.timeout * item.weight
    try:
        item.run(ctx)
    except CaseFailure as failure:
        return Outcome(item.id, item.name, "fail", time.monotonic() - start,
                       failure.expected, failure.got, failure.sent)
    except CaseSkipped as skipped:
        return Outcome(item.id, item.name, "skip", time.monotonic() - start, got=str(skipped))
    except OSError as exc:
        return Outcome(item.id, item.name, "fail", time.monotonic() - start,
                       "a working connection", f"{type(exc).__name__}: {exc}")
    finally:
        ctx.close_all()
    return Outcome(item.id, item.name, "pass", time.monotonic() - start)
