"""The process's sockets: how many descriptors are left for connections (and so how
many may wait to log in), and ending a connection at once."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import struct
from collections.abc import Callable
from typing import Any

from .limits import PendingGate, fitted_pending

DESCRIPTOR_RESERVE = 8
"""Descriptors kept back for the listener, the cluster engine's connections and files."""


def descriptors() -> tuple[int | None, int]:
    """The process's descriptor limit (None: unlimited or unknown) and how many of them
    are free for connections."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None, 0
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 16
    return soft, max(soft - used - DESCRIPTOR_RESERVE, 0)


def fit_to_descriptors(gate: PendingGate[Any], max_clients: int,
                       log: Callable[[str], None]) -> int | None:
    """Size the login queue (and so its shortened deadline) from the descriptors this
    process really has, and say so when that is fewer than asked; the descriptors free
    for connections (None: no limit)."""
    limit, free = descriptors()
    if limit is None:
        return None
    asked = gate.max_pending
    fitted = fitted_pending(asked, max_clients, free)
    if fitted < asked:
        gate.max_pending = fitted
        gate.per_address = min(gate.per_address, fitted)
        log(f"{limit} file descriptors ({free} free): at most {fitted} connections wait to "
            f"log in (--max-pending {asked} asked)"
            + ("" if free >= max_clients else f"; {max_clients} users will not all fit"))
    return free


def reset(transport: asyncio.WriteTransport) -> None:
    """End a connection at once, with a reset: nothing it has not read is kept, neither
    here nor in the kernel's send buffer, which a peer that never reads would hold open."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
