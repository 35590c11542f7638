"""Who may come in, before a byte of the protocol: the addresses served (``--allow``)
and, on a TLS listener, the handshake (with ``--tls-client-ca``, a client certificate
signed by that CA). Each refusal is logged (a bounded number of lines per address) and
counted by reason."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from ..serverlog import LogLine
from .access import Allowed
from .connection import Connection
from .tls import ServerTls, shake_hands

LogAbout = Callable[[str, str], object]
"""Log a line about an address (:meth:`chatsh.serverlog.PeerLog.about`)."""


class Door:
    def __init__(self, allowed: Allowed | None, tls: ServerTls | None,
                 refusals: Counter[str], log_about: LogAbout) -> None:
        self.allowed = allowed
        self.tls = tls
        self._refusals = refusals
        self._log_about = log_about

    def refuses(self, transport: asyncio.WriteTransport, address: str, peer: str) -> bool:
        """Close a connection from an address not served, at once; whether it did."""
        if self.allowed is None or self.allowed.admits(address):
            return False
        transport.abort()
        self._refusals["address"] += 1
        self._log_about(address, LogLine(f"refused {peer}: not an address it serves (--allow)",
                                         "not_allowed", peer))
        return True

    def shake_hands(self, conn: Connection) -> Awaitable[asyncio.Transport | None]:
        """Begin the TLS handshake, from the connection's ``connection_made``; awaited,
        the connection's new transport, or None when it failed (then it is closed)."""
        assert self.tls is not None
        return self._shaken(shake_hands(conn.transport, conn, self.tls.context),
                            conn.address, conn.peer)

    async def _shaken(self, handshake: Awaitable[asyncio.Transport | tuple[str, str]],
                      address: str, peer: str) -> asyncio.Transport | None:
        secured = await handshake
        if not isinstance(secured, tuple):
            return secured
        reason, text = secured
        self._refusals[reason] += 1
        self._log_about(address, LogLine(f"refused {peer}: TLS handshake failed ({text})",
                                         "tls_failed", peer))
        return None
