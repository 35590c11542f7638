"""Requests the server never answers: the shell names each once, after the reply timeout.

A server may keep the connection and never answer again (a published server's thread
dies on a SEND): the request waits for good, and the shell would say nothing. Every
check, the requests still waiting are compared with those of the check before; one
that has waited ``--reply-timeout`` seconds is named in one line, once, and the shell
goes on. chatsh's own requests (quiet ones) are never named.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from .. import texts
from ..engine import ClientEngine
from ..session import Request


class Unanswered:
    """Which waiting requests have waited past ``timeout`` seconds and are not named yet."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._since: dict[Request, float | None] = {}
        """The requests waiting at the last check, with when they were first seen
        waiting (None once named)."""

    def overdue(self, waiting: Sequence[Request]) -> list[Request]:
        """The requests of ``waiting`` (oldest first) that are newly overdue."""
        now = self._clock()
        since = {request: self._since.get(request, now) for request in waiting
                 if not request.quiet}
        due = [request for request, start in since.items()
               if start is not None and now - start >= self.timeout]
        since.update(dict.fromkeys(due))
        self._since = since  # a request answered since the last check is forgotten
        return due


def check_interval(timeout: float) -> float:
    """Seconds between checks: a few per timeout, at least every second, and never so
    often that the shell spins (``--reply-timeout`` may be a nanosecond)."""
    return max(min(timeout / 4, 1.0), 0.05)


async def watch_replies(engine: ClientEngine, timeout: float,
                        say: Callable[[texts.Fragments], None]) -> None:
    """Name, once, each request the server leaves unanswered for ``timeout`` seconds,
    checking every :func:`check_interval`. A request still being written is not late:
    the server has not read it yet."""
    unanswered = Unanswered(timeout)
    while True:
        await asyncio.sleep(check_interval(timeout))
        if engine.sending:
            continue
        due = unanswered.overdue(engine.unanswered())
        if due:
            say(texts.no_reply([request.line.text if request.line else "a request"
                                for request in due], timeout))
