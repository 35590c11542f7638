"""TCP keepalive on a connection, so that a peer gone without a word (a machine turned
off, a laptop shut, a NAT that forgot the connection) is noticed while nothing is sent:
the kernel probes a connection idle for a minute and ends it after four probes 15 s
apart go unanswered, about two minutes in all. Without it such a connection lived for
good on an idle server (its name taken) and in an idle shell (shown connected)."""

from __future__ import annotations

import socket
from typing import Protocol

KEEPALIVE_IDLE = 60
"""Seconds a connection is idle before the first probe."""
KEEPALIVE_INTERVAL = 15
"""Seconds between probes."""
KEEPALIVE_PROBES = 4
"""Probes unanswered that end the connection."""


class Settable(Protocol):
    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


def keep_alive(sock: Settable) -> None:
    """Turn keepalive on for ``sock`` with the timings above, where the system has them."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                          ("TCP_KEEPCNT", KEEPALIVE_PROBES)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
