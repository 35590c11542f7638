"""Logging in again after losing the server: under the same name, with a backoff
between tries (doubling, capped, jittered) so that clients dropped together do not
come back together. A try the server refuses says why in one line, once for each
reason: a server that still holds the lost session's name (it has not seen that
connection end) refuses every try until it does."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from .. import protocol as p
from ..engine import ClientEngine, ConnectError, EventsHandler, HandshakeTimeout, LoginCancelled
from ..sanitize import sanitize
from ..session import LoggedIn, LoginRefused

BACKOFF_FIRST = 0.5
BACKOFF_CAP = 10.0


def reconnect_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before reconnect attempt ``attempt`` (0, 1, ...): doubling, capped, jittered.

    The wait is drawn between half and all of ``min(cap, first * 2**attempt)``.
    """
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * (1 << min(attempt, 32)))
    draw = rng.random() if rng is not None else random.random()
    return ceiling * (0.5 + 0.5 * draw)


def refusal_reason(name: str, refused: LoginRefused) -> str:
    """Why the server refused to log ``name`` in again, as the end of a sentence."""
    verdict, name = refused.verdict, sanitize(name)
    if isinstance(verdict, p.InUse):
        return (f"the server still has {name} logged in (the lost connection may not have "
                "ended there yet)")
    if isinstance(verdict, p.Busy):
        return "the server is full"
    if isinstance(verdict, p.BadRequestBody):
        return f"the server does not take the name {name} now"
    if isinstance(verdict, p.BadRequestHeader):
        return "the server answered the login with BAD-RQST-HDR"
    return "the server closed the connection without answering the login"


async def log_in_again(engine: ClientEngine, name: str, on_events: EventsHandler,
                       trying: Callable[[int], None], say: Callable[[str], None]) -> None:
    """Log in as ``name`` until it works; ``trying(attempt)`` is told before each try's
    wait (so also after each try that failed), and ``say`` each new reason the server
    gave for refusing a try."""
    attempt = 0
    said: set[str] = set()
    while True:
        trying(attempt)
        await asyncio.sleep(reconnect_delay(attempt))
        try:
            verdict = await asyncio.to_thread(engine.log_in, name, on_events)
        except (ConnectError, HandshakeTimeout, LoginCancelled):  # closed at exit
            verdict = None
        if isinstance(verdict, LoggedIn):
            return
        if isinstance(verdict, LoginRefused) and (why := refusal_reason(name, verdict)) not in said:
            said.add(why)
            say(f"Logging in again as {sanitize(name)}: {why}; trying again.")
        attempt += 1
