"""Every target of the shared benches in one table, against the figures of the last release.

Runs the benches in ``../shared/bench`` (their README says what each measures) with
the ``chatsh`` first on PATH or ``$CHATSH``, and this folder's ``store_cost.py`` (what
the message store costs the flood, with this checkout's chatsh), reads each one's ratio
from its output,
and prints them beside the target and the figure committed in ``bench/figures.json``.
A figure more than 20% worse than the committed one is named at the end, and the
exit status is then 1. ``--save`` writes this run's figures as the new reference,
with the date and the number of runs, and ``bench/figures.md``, the same figures as a
Markdown table that the docs include (``--table`` writes that table alone, from
``bench/figures.json``, running no bench). CI times nothing: run this before a change
lands.

    python bench/sticks.py [--only flood script ...] [--runs 3] [--save]
    python bench/sticks.py --table

The benches are noisy on a shared machine (one 64 MiB echo took 0.86x and then
1.22x of the bare client's time with the same code): the median of ``--runs``
counts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench"
FIGURES = HERE / "figures.json"
"""Each stick's reference: ``{"figure": 1.76, "runs": 5, "date": "2026-12-02"}``."""
TABLE = HERE / "figures.md"
WORSE = 1.2
"""A figure this much worse than the committed one is a regression."""


@dataclass(frozen=True)
class Stick:
    name: str
    argv: list[str]
    pattern: str
    """Finds the figure in the bench's output (the last match counts)."""
    target: float
    higher_is_better: bool = False

    def worse(self, figure: float, reference: float) -> bool:
        if self.higher_is_better:
            return figure * WORSE < reference
        return figure > reference * WORSE

    def meets(self, figure: float) -> bool:
        return figure >= self.target if self.higher_is_better else figure <= self.target

    @property
    def wanted(self) -> str:
        """The target as the shared benches state it: ``<= 2.00``."""
        return f"{'>=' if self.higher_is_better else '<='} {self.target:.2f}"


STICKS = [
    Stick("flood", ["bench_flood.py", "-n", "10000"], r"n= 10000: .*ratio ([\d.]+)", 2.0),
    Stick("bigmsg growth", ["bench_bigmsg.py", "--max-factor", "1.5", "--max-ratio", "1.15"],
          r"growth ([\d.]+)x message size", 1.5),
    Stick("bigmsg wall", [], r"chatsh/bare ([\d.]+)", 1.15),
    Stick("script", ["bench_script.py"], r"ratio chatsh/raw ([\d.]+)", 1.2),
    Stick("server", ["bench_server.py"], r"worst throughput ratio chatsh/relay ([\d.]+)", 1.0,
          higher_is_better=True),
    Stick("startup", ["bench_startup.py"], r"chatsh --version .* ratio ([\d.]+)", 3.0),
    Stick("store cost", ["store_cost.py"], r"ratio store/no store: ([\d.]+)", 1.1),
]
"""A stick with no argv reads the output of the one before it; a bench found in this
folder runs from here, the others from the shared ones."""


def run(stick: Stick, runs: int, previous: list[str]) -> tuple[float | None, list[str]]:
    """The median figure over ``runs`` runs of the bench, and their outputs."""
    outputs = previous
    if stick.argv:
        outputs = []
        bench = HERE / stick.argv[0]
        if not bench.exists():
            bench = SHARED / stick.argv[0]
        for _ in range(runs):
            done = subprocess.run([sys.executable, str(bench), *stick.argv[1:]],
                                  capture_output=True, text=True, cwd=bench.parent,
                                  timeout=1800, env=dict(os.environ))
            outputs.append(done.stdout + done.stderr)
    found = [float(hits[-1]) for output in outputs if (hits := re.findall(stick.pattern, output))]
    return (statistics.median(found) if found else None), outputs


def table(saved: dict[str, dict[str, Any]]) -> str:
    """The saved figures as the Markdown table the docs include (bench/figures.md)."""
    rows = ["| stick | target | figure | meets it | median of | measured |",
            "|---|---|---|---|---|---|"]
    for stick in STICKS:
        entry = saved.get(stick.name)
        if entry is None:
            continue
        figure = entry["figure"]
        rows.append(f"| {stick.name} | {stick.wanted} | {figure:.2f} | "
                    f"{'yes' if stick.meets(figure) else 'no'} | {entry['runs']} runs | "
                    f"{entry['date']} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="only the sticks whose name starts with one of these")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each bench; the median figure counts (default 3)")
    parser.add_argument("--save", action="store_true",
                        help="write this run's figures to bench/figures.json and bench/figures.md")
    parser.add_argument("--table", action="store_true",
                        help="only write bench/figures.md from bench/figures.json")
    args = parser.parse_args()
    reference = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    if args.table:
        TABLE.write_text(table(reference))
        return 0
    today = datetime.date.today().isoformat()
    figures: dict[str, dict[str, Any]] = {}
    regressions = []
    outputs: list[str] = []
    print(f"{'stick':<14} {'figure':>7} {'target':>8} {'last release':>13}  verdict")
    for stick in STICKS:
        if args.only and not any(stick.name.startswith(only) for only in args.only):
            continue
        figure, outputs = run(stick, args.runs, outputs)
        if figure is None:
            print(f"{stick.name:<14} {'-':>7}  (no figure in the bench's output)")
            continue
        figures[stick.name] = {"figure": figure, "runs": args.runs, "date": today}
        before = reference.get(stick.name, {}).get("figure")
        verdict = "meets the target" if stick.meets(figure) else "short of the target"
        if before is not None and stick.worse(figure, before):
            verdict += f"; more than {WORSE - 1:.0%} worse than the last release"
            regressions.append(stick.name)
        shown_before = "-" if before is None else f"{before:.2f}"
        print(f"{stick.name:<14} {figure:>7.2f} {stick.wanted:>8} {shown_before:>13}  "
              f"{verdict}", flush=True)
    if args.save:
        saved = {**reference, **figures}
        FIGURES.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
        TABLE.write_text(table(saved))
    if regressions:
        print(f"worse than the last release: {', '.join(regressions)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
