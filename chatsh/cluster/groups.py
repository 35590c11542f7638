"""A cluster's state split into groups, each under a hash tag of its own.

On a Redis Cluster each group's keys and channels live on the shard of its hash
tag, so the groups spread the work over the shards. A name belongs to one group,
chosen by a checksum of its skeleton (look-alike names meet in one group, where
one script still decides between them); every node holds a lease and listens on
a channel in every group. One group keeps the layout of a single engine.

A node keeps, per group, whether it reaches it and when its lease there was last
renewed: a shard out of reach stops only the names of its groups.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence

from redis.asyncio.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS
from redis.crc import key_slot

from .calls import EngineClock, ScriptCalls
from .config import MAX_GROUPS
from .engines import EngineClient, EngineErrors, engine_client, is_sharded

GROUPS_PER_PRIMARY = 4
"""A Redis Cluster's groups when no node says: this many for each of its primaries at the
cluster's first start, room for it to grow into more shards."""


class Group:
    """One group: its keys, this node's channel and inbox there, the calls to it (the lease's on
    a connection of their own), and whether this node reaches it."""

    def __init__(self, prefix: str, node: str, commands: EngineClient,
                 beats: EngineClient, listeners: str) -> None:
        self.prefix = prefix
        self.node = node
        self.keys = (f"{prefix}:claims", f"{prefix}:nodes")
        self.key_prefix = f"{prefix}:"
        self.channel = f"{prefix}:reader:{node}"
        """Where this node listens, so that routes know it is there to read its inbox."""
        self.inbox = f"{prefix}:inbox:{node}"
        self.clock = EngineClock()
        """The group's engine's clock (on a Redis Cluster, each shard has its own)."""
        self.calls = ScriptCalls(commands, self.keys, self.key_prefix, listeners, self.clock)
        self.lease_calls = ScriptCalls(beats, self.keys, self.key_prefix, listeners,
                                       self.clock)
        self.reachable = False
        self.renewed_at = float("-inf")
        """When this node's lease in the group was last renewed (event loop time)."""

    def holds_lease(self, now: float, lease: float) -> bool:
        """Whether this node's names in the group count now: reached, lease alive."""
        return self.reachable and now - self.renewed_at < lease


def prefixes(cluster: str, count: int) -> list[str]:
    """The hash tags of a cluster's groups (one group: ``{chatsh:<cluster>}``, as on a
    single engine). Group k's tag is the first of ``{chatsh:<cluster>:g0}``,
    ``{chatsh:<cluster>:g1}``... that falls in the k-th of ``count`` equal ranges of the
    16,384 slots: a cluster whose shards share the slots evenly (as they usually do) then
    holds the groups evenly, where tags left to chance may all land on one shard. One
    pass over the candidates fills every range (about count x ln(count) tries)."""
    if count == 1:
        return [f"{{chatsh:{cluster}}}"]
    tags: list[str | None] = [None] * count
    missing = count
    for number in itertools.count():
        tag = f"chatsh:{cluster}:g{number}"
        at = key_slot(tag.encode()) * count // SLOTS
        if tags[at] is None:
            tags[at] = f"{{{tag}}}"
            missing -= 1
            if not missing:
                break
    return [tag for tag in tags if tag is not None]


def count_key(cluster: str) -> str:
    """The key that holds how many groups the cluster has (the first node writes it)."""
    return f"{prefixes(cluster, 1)[0]}:groups"


async def default_count(url: str, cluster: str) -> int:
    """The group count of a node started without one: the cluster's, as the engine holds
    it; else, on a Redis Cluster, :data:`GROUPS_PER_PRIMARY` for each primary (at most
    :data:`~.config.MAX_GROUPS`), so that the names spread over the shards; else 1. An
    engine out of reach: 1 (starting on it says why)."""
    client = engine_client(url, socket_connect_timeout=5.0, socket_timeout=5.0)
    try:
        found = await client.get(count_key(cluster))
        if isinstance(found, bytes) and found.isdigit() and 0 < int(found) <= MAX_GROUPS:
            return int(found)
        if is_sharded(url) and isinstance(client, RedisCluster):
            return min(MAX_GROUPS, GROUPS_PER_PRIMARY * len(client.get_primaries()))
    except EngineErrors:
        pass
    finally:
        await client.aclose()
    return 1


def group_of(skeleton: str, count: int) -> int:
    """The group of a name, from its skeleton (CRC-32: the same on every node)."""
    return zlib.crc32(skeleton.encode("utf-8", "surrogatepass")) % count


def by_group(skeletons: Sequence[str], count: int) -> list[list[int]]:
    """The positions of ``skeletons`` in each group, in order."""
    positions: list[list[int]] = [[] for _ in range(count)]
    for position, skeleton in enumerate(skeletons):
        positions[group_of(skeleton, count)].append(position)
    return positions
