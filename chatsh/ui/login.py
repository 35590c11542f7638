"""The login prompt: a name is asked for until the server takes one.

A login waits for its verdict off the event loop, so the screen never freezes
while a server dawdles; Ctrl-C then (a SIGINT: no prompt runs) cancels it, and a
name is asked for again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..frontend import EXIT_OK, Leave, Login
from .asker import Asker


class LoginPrompt:
    def __init__(self, asker: Asker, attempt: Callable[[str], Login | Leave],
                 settle: Callable[[], None], cancel: Callable[[], None]) -> None:
        """``attempt`` logs in (on a thread), ``settle`` shows what came meanwhile, and
        ``cancel`` closes the connection, which ends a login that waits."""
        self._asker = asker
        self._attempt = attempt
        self._settle = settle
        self._cancel = cancel
        self._waiting = False

    async def run(self, preset: str | None) -> int | None:
        """Ask for a name (``preset`` first, if given) until the server accepts one;
        an exit status means leave."""
        ask = "login: "
        while True:
            if preset is not None:  # --user NAME: a name, never a command
                name, preset = preset, None
            else:
                self._settle()
                try:
                    name = await self._asker.line(ask)
                except EOFError:
                    return EXIT_OK
                if name.strip() == "!quit":
                    return EXIT_OK
            if not name.strip():
                continue
            self._waiting = True
            try:
                login = await asyncio.to_thread(self._attempt, name)
            except asyncio.CancelledError:  # a leaving signal: stop waiting at once
                self._cancel()
                raise
            finally:
                self._waiting = False
            self._settle()
            if isinstance(login, Leave):
                return login.status
            if login is Login.IN:
                return None
            # not a chat prompt after a refusal: what is typed next is a name
            ask = "another name: " if login is Login.RETRY else "login: "

    def interrupt(self) -> None:
        """SIGINT: a login that waits for its verdict is cancelled."""
        if self._waiting:
            self._cancel()
