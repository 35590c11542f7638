"""How long the shell waits between tries to log in again after losing the server."""

from __future__ import annotations

import random

BACKOFF_FIRST = 0.5
BACKOFF_CAP = 10.0


def reconnect_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before reconnect attempt ``attempt`` (0, 1, ...): doubling, capped, jittered.

    The wait is drawn between half and all of ``min(cap, first * 2**attempt)``,
    so clients dropped together do not come back together.
    """
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * (1 << min(attempt, 32)))
    draw = rng.random() if rng is not None else random.random()
    return ceiling * (0.5 + 0.5 * draw)
