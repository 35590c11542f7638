"""What a node of a cluster is told on the command line (importing no engine client)."""

from __future__ import annotations

from dataclasses import dataclass

from ..defaults import DEFAULT_MAX_LINE

DEFAULT_LEASE = 5.0
LEASES = (1.0, 3600.0)
"""The shortest and longest ``--lease`` in seconds: shorter, a renewal may come back after
the lease it renews has run out (the node then registers again and again, refusing every
login); longer, a dead node's names stay taken for hours, and the engine's times overflow."""
DEFAULT_CLUSTER_NAME = "chatsh"
MAX_GROUPS = 1024
"""The most groups a cluster's names may be split into (``--groups``)."""


@dataclass
class ClusterConfig:
    url: str
    """The engine, e.g. ``redis://127.0.0.1:6379/0``."""
    node: str
    cluster: str = DEFAULT_CLUSTER_NAME
    lease: float = DEFAULT_LEASE
    """Seconds a node's names outlive its last heartbeat."""
    max_line: int = DEFAULT_MAX_LINE
    groups: int = 1
    """Groups the cluster's state is split into, each under its own hash tag (the same
    on every node); 0: as the cluster has it (see :func:`.groups.default_count`)."""
