"""A cluster's state split into groups, each under a hash tag of its own.

On a Redis Cluster each group's keys and channels live on the shard of its hash
tag, so the groups spread the work over the shards. A name belongs to one group,
chosen by a checksum of its skeleton (look-alike names meet in one group, where
one script still decides between them); every node holds a lease and listens on
a channel in every group. One group keeps the layout of a single engine.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import ClusterNode, ClusterPubSub
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS
from redis.crc import key_slot
from redis.exceptions import RedisError

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
    single engine). Group k's tag is ``{chatsh:<cluster>:k.j}`` with the first j that puts
    it in the k-th of ``count`` equal ranges of the 16,384 slots: a cluster whose shards
    share the slots evenly (as they usually do) then holds the groups evenly, where
    tags left to chance may all land on one shard."""
    if count == 1:
        return [f"{{chatsh:{cluster}}}"]
    tags = []
    for index in range(count):
        suffix = 0
        while key_slot(f"chatsh:{cluster}:{index}.{suffix}".encode()) * count // SLOTS != index:
            suffix += 1
        tags.append(f"{{chatsh:{cluster}:{index}.{suffix}}}")
    return tags


def group_of(skeleton: str, count: int) -> int:
    """The group of a name, from its skeleton (CRC-32: the same on every node)."""
    return zlib.crc32(skeleton.encode("utf-8", "surrogatepass")) % count


def by_group(skeletons: Sequence[str], count: int) -> list[list[int]]:
    """The positions of ``skeletons`` in each group, in order."""
    positions: list[list[int]] = [[] for _ in range(count)]
    for position, skeleton in enumerate(skeletons):
        positions[group_of(skeleton, count)].append(position)
    return positions


FOREVER: Any = None
"""A wait without a time limit (redis-py's annotation of its timeouts says float)."""


async def pump_shard(pubsub: ClusterPubSub, shard: ClusterNode, arrived: asyncio.Queue[Any]
                     ) -> None:
    """Hand on what one shard's subscription receives, or its failure. (Asked for the
    messages of all shards at once, redis-py waits on each in turn for the whole
    timeout: a message on the next shard waits behind an idle one.)"""
    try:
        while True:
            arrived.put_nowait(await pubsub.get_sharded_message(target_node=shard,
                                                                timeout=FOREVER))
    except (RedisError, OSError) as exc:
        arrived.put_nowait(exc)
