"""The shell's sending thread: a server that stops reading blocks it, never the prompt.

Requests go out in order. What cannot go is reported through ``not_sent`` (which
the shell runs on its event loop), never dropped silently; a request typed for a
connection since lost is not sent on the next one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from ..engine import ClientEngine
from ..session import Outgoing


class Sender:
    def __init__(self, engine: ClientEngine, not_sent: Callable[[str], None]) -> None:
        self._engine = engine
        self._not_sent = not_sent
        self._queue: queue.SimpleQueue[tuple[object, Outgoing]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @property
    def idle(self) -> bool:
        """Nothing waits to be sent or is being written."""
        return self._queue.empty() and not self._engine.sending

    def put(self, outgoing: Outgoing) -> None:
        """Send ``outgoing`` on the connection logged in now."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_forever, name="chatsh-sender",
                                            daemon=True)
            self._thread.start()
        self._queue.put((self._engine.session, outgoing))

    def _send_forever(self) -> None:
        while True:
            session, outgoing = self._queue.get()
            if session is not self._engine.session:
                self._not_sent("typed before the connection was lost")
                continue
            try:
                self._engine.submit([outgoing])
            except ConnectionError as exc:
                self._not_sent(str(exc))
