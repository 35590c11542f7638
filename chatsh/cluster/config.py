"""What a node of a cluster is told on the command line (importing no engine client)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LEASE = 5.0


@dataclass
class ClusterConfig:
    url: str
    """The engine, e.g. ``redis://127.0.0.1:6379/0``."""
    node: str
    cluster: str = "chatsh"
    lease: float = DEFAULT_LEASE
    """Seconds a node's names outlive its last heartbeat."""
    max_line: int = 64 << 20
