"""The server's listening sockets: one, plain or TLS, or a plain one and a TLS one side
by side."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Serve = Callable[[bool], asyncio.Protocol]
"""Makes the protocol of one connection; its argument says whether it came to the TLS
listener."""


class Listeners:
    def __init__(self) -> None:
        self._servers: list[asyncio.Server] = []

    async def open(self, serve: Serve, host: str, port: int, tls: bool,
                   tls_port: int | None) -> None:
        """Listen on ``port`` (with TLS if ``tls`` and no ``tls_port``); with ``tls_port``,
        plain on ``port`` and TLS on ``tls_port``."""
        wanted = [(port, tls and tls_port is None)]
        if tls_port is not None:
            wanted.append((tls_port, True))
        loop = asyncio.get_running_loop()
        for where, secure in wanted:
            self._servers.append(await loop.create_server(
                lambda secure=secure: serve(secure), host, where))  # type: ignore[misc]

    @property
    def port(self) -> int:
        """The first listener's port."""
        port: int = self._servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def tls_port(self) -> int | None:
        """The TLS listener's port beside a plain one, if there is one."""
        if len(self._servers) < 2:
            return None
        port: int = self._servers[1].sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        """Accept no more connections."""
        for server in self._servers:
            server.close()

    async def wait_closed(self) -> None:
        for server in self._servers:
            await server.wait_closed()

    def __bool__(self) -> bool:
        return bool(self._servers)
