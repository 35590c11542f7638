"""Listening on this node's channel in one group, on a subscription of its own: a route
stores deliveries for a node only while it listens there (see :mod:`.scripts`), so a
node that dies stops taking messages at once, not when its lease runs out. Nothing
comes on the channel (deliveries wait in the node's inbox, :mod:`.inbox`); whatever
anyone publishes there is ignored.

Each group is listened to apart from the others, so a shard out of reach stops only
the messages of its groups; its listener tries again every :data:`RETRY_PAUSE`
seconds until the shard is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.cluster import ClusterPubSub, RedisCluster

from .engines import EngineClient, EngineErrors
from .groups import Group

RETRY_PAUSE = 0.2
"""Seconds between tries to reach the engine while it is out of reach."""
FOREVER: Any = None
"""A wait without a time limit (redis-py's annotation of its timeouts says float)."""

Lost = Callable[[Group, BaseException], None]
"""Called when the subscription fails (the group is out of reach)."""


class GroupListener:
    """This node's subscription to its channel in one group."""

    def __init__(self, group: Group, client: EngineClient, lost: Lost,
                 topology: Callable[[], Awaitable[None]]) -> None:
        """``topology``: find where the slots are now (a sharded client sends no other
        command, so it would subscribe at a shard that lost the slot)."""
        self.group = group
        self._client = client
        self._lost = lost
        self._topology = topology
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def restart(self) -> None:
        """Listen (again), dropping any earlier subscription."""
        self.stop()
        self._task = asyncio.create_task(self._listen_forever())

    def stop(self) -> asyncio.Task[None] | None:
        """Stop listening; the task to wait for, if any."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()  # until the engine drops the subscription
            except EngineErrors as exc:
                self._lost(self.group, exc)
                await asyncio.sleep(RETRY_PAUSE)

    async def _listen(self) -> None:
        """Subscribe and listen until the engine ends the subscription by itself
        (it does so for a sharded channel whose slot moves to another shard)."""
        channel = self.group.channel
        pubsub = self._client.pubsub()
        try:
            if isinstance(pubsub, ClusterPubSub) and isinstance(self._client, RedisCluster):
                await self._topology()
                await pubsub.ssubscribe(channel)
                receive = functools.partial(
                    pubsub.get_sharded_message, timeout=FOREVER,
                    target_node=self._client.get_node_from_key(channel))
            else:
                await pubsub.subscribe(channel)
                receive = functools.partial(pubsub.get_message, timeout=FOREVER)
            while True:
                message = await receive()
                if message is None:
                    continue
                if message["type"] in ("subscribe", "ssubscribe"):
                    self.subscribed.set()
                elif message["type"] in ("unsubscribe", "sunsubscribe"):
                    return  # to subscribe again at once, where the slot is now
        finally:
            with contextlib.suppress(*EngineErrors):
                await pubsub.aclose()
