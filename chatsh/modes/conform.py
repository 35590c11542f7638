"""``chatsh conform``: check a server against the protocol, case by case."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from ..conform.cases import Context
from ..conform.runner import Outcome, run_case, select


def _line(outcome: Outcome, width: int) -> str:
    mark = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}[outcome.result]
    return f"{outcome.id:<{width}}  {mark}  {outcome.seconds:6.3f}s  {outcome.name}"


def _details(outcome: Outcome) -> list[str]:
    lines = [f"    sent:     {sent}" for sent in outcome.sent[-5:]]
    if outcome.result == "fail":
        lines += [f"    expected: {outcome.expected}", f"    got:      {outcome.got}"]
    elif outcome.got:
        lines.append(f"    ({outcome.got})")
    return lines


def run(host: str, port: int, timeout: float, max_clients: int | None, pattern: str | None,
        as_json: bool, peer: tuple[str, int] | None = None) -> int:
    cases = select(pattern, with_peer=peer is not None)
    if not cases:
        print(f"chatsh conform: no case matches {pattern!r}", file=sys.stderr)
        return 2
    width = max(len(item.id) for item in cases)
    ctx = Context(host, port, timeout, max_clients, peer)
    outcomes = []
    for item in cases:
        outcome = run_case(item, ctx)
        outcomes.append(outcome)
        if not as_json:
            print(_line(outcome, width), flush=True)
            if outcome.result != "pass":
                print("\n".join(_details(outcome)), flush=True)
    counts = {result: sum(o.result == result for o in outcomes)
              for result in ("pass", "fail", "skip")}
    summary = f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
    if as_json:
        print(json.dumps({"server": f"{host}:{port}",
                          "peer": f"{peer[0]}:{peer[1]}" if peer else None,
                          "passed": counts["pass"], "failed": counts["fail"],
                          "skipped": counts["skip"],
                          "cases": [asdict(o) for o in outcomes]}, ensure_ascii=False, indent=1))
    else:
        print(summary)
    return 1 if counts["fail"] else 0
