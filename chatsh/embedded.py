"""Run the chat server in a background thread of this process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from .backplane import Backplane
from .server import ChatServer
from .serverconfig import ServerConfig
from .serverlog import no_log
from .serving.tls import ServerTls

START_TIMEOUT = 10.0


class EmbeddedServer:
    """The server on 127.0.0.1 (a free port by default), for ``chatsh`` alone."""

    def __init__(self, config: ServerConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0, backplane: Backplane | None = None,
                 tls: ServerTls | None = None, tls_port: int | None = None,
                 new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
                 ) -> None:
        """``tls``: speak TLS on ``port``, or with a ``tls_port`` there beside it;
        ``new_loop``: makes the event loop it runs on."""
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self._server = ChatServer(config, log=no_log, backplane=backplane, tls=tls)
        self._loop = new_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chatsh-server", daemon=True)

    def start(self) -> EmbeddedServer:
        """Listen, or raise OSError: the server's own, or one saying why it did not
        start within START_TIMEOUT seconds or failed in another way."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise OSError(f"the embedded server did not start within {START_TIMEOUT:g} s")
        if isinstance(self._error, OSError):
            raise self._error
        if self._error is not None:
            raise OSError(f"{type(self._error).__name__}: {self._error}") from self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._server.start(self.host, self.port,
                                                             self.tls_port))
            self.port = self._server.port
            self.tls_port = self._server.listeners.tls_port
        except Exception as exc:  # whatever stops it, start() must hear of it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._shut_down())
        self._loop.close()

    async def _shut_down(self) -> None:
        """Stop the server, then end every task, those begun meanwhile too (a login
        read while stopping)."""
        await self._server.stop()
        while tasks := [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
