"""What the message store costs a flood: the flood of ``bench/flood.py`` into chatsh
with its store and with ``--no-store``, side by side.

Each run starts chatsh in a pseudo-terminal with a half-typed line and pushes it
``--floods`` floods of N ``DELIVERY`` lines, each after a pause: the pauses go round
``--pauses`` (0.3 s: the flood before is not written yet; 0.5 s: the store starts
writing it as the next one comes; 1.5 s: it is adding it to the full-text index). Runs
with the store and without alternate, so the machine's noise falls on both alike. Prints
the median time per flood both ways, at each pause and in all, and the ratio store/no
store; the exit status is 1 when that ratio is above ``--max-ratio``.

    python bench/store_cost.py [-n 10000] [--runs 10] [--floods 6] [--pauses 0.3 0.5 1.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from flood import logged_in_chatsh, push


def flood_lines(n: int, tag: int) -> bytes:
    """A flood whose last line, ``END-<tag>``, is found on the screen only once."""
    return b"".join(b"DELIVERY bob flood message number %d of the run\n" % i
                    for i in range(n - 1)) + b"DELIVERY bob END-%d\n" % tag


def floods(options: list[str], n: int, pauses: list[float], count: int
           ) -> list[tuple[float, float]]:
    """One chatsh: ``count`` floods, each after a pause; ``(pause, seconds)`` per flood."""
    timed = []
    with logged_in_chatsh(*options) as (term, conn):
        term.write(b"@bob half typed")
        term.read_until(b"half typed")
        for tag in range(count):
            pause = pauses[tag % len(pauses)]
            time.sleep(pause)  # the calm between two floods is what is measured
            mark = len(term.seen)
            data = flood_lines(n, tag)
            start = time.monotonic()
            push(conn, data)
            timed.append((pause, term.read_until(b"END-%d\r" % tag, start=mark) - start))
    return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="lines in a flood")
    parser.add_argument("--runs", type=int, default=10, help="chatsh runs each way")
    parser.add_argument("--floods", type=int, default=6, help="floods in a run")
    parser.add_argument("--pauses", type=float, nargs="+", default=[0.3, 0.5, 1.5],
                        help="seconds between floods, in turn")
    parser.add_argument("--max-ratio", type=float, default=1.1)
    args = parser.parse_args()
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="chatsh-bench-store-")
    ways = {"store": [], "no store": ["--no-store"]}
    timed: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    for run in range(args.runs):
        for way in (list(ways) if run % 2 == 0 else list(reversed(ways))):
            timed[way] += floods(ways[way], args.n, args.pauses, args.floods)
    print(f"{args.n:,} lines a flood, {args.runs} runs of {args.floods} floods each way; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'pause':>7} {'store s':>8} {'no store s':>11} {'ratio':>6}")
    ratio = 0.0
    for pause in [*args.pauses, None]:
        medians = [statistics.median(seconds for at, seconds in timed[way]
                                     if pause is None or at == pause) for way in ways]
        ratio = medians[0] / medians[1]
        shown = "all" if pause is None else f"{pause:g} s"
        print(f"{shown:>7} {medians[0]:>8.4f} {medians[1]:>11.4f} {ratio:>6.2f}")
    print(f"ratio store/no store: {ratio:.2f} (at most {args.max_ratio:g})")
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
