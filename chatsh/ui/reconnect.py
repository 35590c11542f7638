"""Logging in again after losing the server: under the same name, with a backoff
between tries (doubling, capped, jittered) so that clients dropped together do not
come back together."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from ..engine import ClientEngine, ConnectError, EventsHandler, HandshakeTimeout, LoginCancelled
from ..session import LoggedIn

BACKOFF_FIRST = 0.5
BACKOFF_CAP = 10.0


def reconnect_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before reconnect attempt ``attempt`` (0, 1, ...): doubling, capped, jittered.

    The wait is drawn between half and all of ``min(cap, first * 2**attempt)``.
    """
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * (1 << min(attempt, 32)))
    draw = rng.random() if rng is not None else random.random()
    return ceiling * (0.5 + 0.5 * draw)


async def log_in_again(engine: ClientEngine, name: str, on_events: EventsHandler,
                       trying: Callable[[int], None]) -> None:
    """Log in as ``name`` until it works; ``trying(attempt)`` is told before each try's
    wait (so also after each try that failed)."""
    attempt = 0
    while True:
        trying(attempt)
        await asyncio.sleep(reconnect_delay(attempt))
        try:
            verdict = await asyncio.to_thread(engine.log_in, name, on_events)
        except (ConnectError, HandshakeTimeout, LoginCancelled):  # closed at exit
            verdict = None
        if isinstance(verdict, LoggedIn):
            return
        attempt += 1
