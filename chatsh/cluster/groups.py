"""A cluster's state split into groups, each under a hash tag of its own.

On a Redis Cluster each group's keys and channels live on the shard of its hash
tag, so the groups spread the work over the shards. A name belongs to one group,
chosen by a checksum of its skeleton (look-alike names meet in one group, where
one script still decides between them); every node holds a lease and listens on
a channel in every group. One group keeps the layout of a single engine.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from .calls import ScriptCalls
from .engines import EngineClient


class Group:
    """One group: its keys, this node's channel there, and the calls to it (the
    lease's on a connection of their own)."""

    def __init__(self, prefix: str, node: str, commands: EngineClient,
                 beats: EngineClient, publish: str) -> None:
        self.keys = (f"{prefix}:claims", f"{prefix}:nodes")
        self.channel_prefix = f"{prefix}:node:"
        self.channel = self.channel_prefix + node
        self.calls = ScriptCalls(commands, self.keys, self.channel_prefix, publish)
        self.lease_calls = ScriptCalls(beats, self.keys, self.channel_prefix, publish)


def prefixes(cluster: str, count: int) -> list[str]:
    """The hash tags of a cluster's groups (one group: ``{chatsh:<cluster>}``, as on a
    single engine)."""
    if count == 1:
        return [f"{{chatsh:{cluster}}}"]
    return [f"{{chatsh:{cluster}:{index}}}" for index in range(count)]


def group_of(skeleton: str, count: int) -> int:
    """The group of a name, from its skeleton (CRC-32: the same on every node)."""
    return zlib.crc32(skeleton.encode("utf-8", "surrogatepass")) % count


def by_group(skeletons: Sequence[str], count: int) -> list[list[int]]:
    """The positions of ``skeletons`` in each group, in order."""
    positions: list[list[int]] = [[] for _ in range(count)]
    for position, skeleton in enumerate(skeletons):
        positions[group_of(skeleton, count)].append(position)
    return positions
