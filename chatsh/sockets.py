"""The process's sockets: how many descriptors are left for connections, and ending a
connection at once."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import struct

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


def reset(transport: asyncio.WriteTransport) -> None:
    """End a connection at once, with a reset: nothing it has not read is kept, neither
    here nor in the kernel's send buffer, which a peer that never reads would hold open."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
