"""One group's life on this node: its lease there, the heartbeat that renews it, whether
the node reaches the group, and the way back after a lapse or an absence.

A node's names in a group count only while its lease there lives, so the names of a
node that dies free themselves. The heartbeat renews the lease a few times per lease,
on a connection of its own and apart from the other groups (a shard that hangs holds
back the renewals of its own groups only). While the group is out of reach the node
says so once; it comes back by itself: registers there again, claims its users' names
there again, reads its inbox (a new one if the engine lost it) and listens again.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import RedisError

from ..sanitize import sanitize
from . import scripts
from .calls import BASE_DEADLINE, ENGINE_RATE
from .config import ClusterConfig
from .engines import EngineClient, EngineErrors, on_shard_of
from .groups import Group
from .inbox import Inbox, Take
from .listener import RETRY_PAUSE, GroupListener

Log = Callable[[str], None]
Reclaim = Callable[[Group], Awaitable[bool]]
"""Make what a group holds for this node match its users there; whether answered."""

COMMAND_TIMEOUT = 5.0
ERROR_SHOWN = 200
"""Characters of an engine error that a log line shows at most."""
INBOX_GRACE = 30.0
"""Seconds a node's inbox outlives its lease (at least one lease more): a node stopped
or cut off for longer than its lease gets what was acknowledged before it lapsed when
it comes back; one gone for good has its inbox dropped then."""


@dataclass(frozen=True)
class Node:
    """What every group's life of one node shares."""

    config: ClusterConfig
    incarnation: str
    """This process's: a node started again under the same name is another."""
    inbox_limit: int
    single: bool
    """The cluster is one group (log lines speak of the engine)."""
    log: Log


def unreachable(exc: BaseException) -> str:
    """What an engine error says, in a few words, escaped."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, MasterNotFoundError):  # with every sentinel client's settings
        service, _, errors = text.removeprefix("No master found for ").partition(" : ")
        why = errors.rpartition(": ")[2] if errors else "none of them monitors it"
        text = f"no sentinel named a primary for {service} ({why})"
    return sanitize(text if len(text) <= ERROR_SHOWN else f"{text[:ERROR_SHOWN]}...")


class GroupLife:
    """This node in one group: lease, heartbeat, reachability, inbox and listener."""

    def __init__(self, group: Group, node: Node, clients: tuple[EngineClient, EngineClient],
                 take: Take, reclaim: Reclaim,
                 find_shards: Callable[[], Awaitable[None]]) -> None:
        """``clients``: the commands' (for this node's listener count) and the readers'
        (inbox and listener); ``take``: what the inbox gives; ``find_shards``: where the
        slots are now (for a listener about to subscribe)."""
        self.group = group
        self._node = node
        self._commands, readers = clients
        self._reclaim = reclaim
        self.inbox = Inbox(group, readers, take, self._lost,
                           BASE_DEADLINE + node.inbox_limit / ENGINE_RATE)
        self.listener = GroupListener(group, readers, self._lost, find_shards)
        self._tasks: set[asyncio.Task[None]] = set()
        self._lapse = asyncio.Event()
        """Set when the group is lost: the heartbeat tries again at once, not at its next
        beat (a lease away)."""

    def begin(self, epoch: str) -> None:
        """Registered (``epoch``: of the inbox): read, listen and keep the lease."""
        self.group.renewed_at = asyncio.get_running_loop().time()
        self.group.reachable = True
        self.inbox.open(epoch)
        self.listener.restart()
        self._spawn(self._heartbeat_forever())

    def stop(self) -> list[asyncio.Task[None]]:
        """Stop everything; the tasks to wait for."""
        tasks = [*self._tasks, *(task for task in (self.inbox.stop(), self.listener.stop())
                                 if task is not None)]
        for task in tasks:
            task.cancel()
        return tasks

    def lost(self, exc: BaseException) -> None:
        """The group is out of reach (said once)."""
        group = self.group
        if not group.reachable:
            return
        group.reachable = False
        group.clock.reset()  # another engine may answer next (a restart, a failover)
        self._lapse.set()
        if self._node.single:
            self._node.log(f"the cluster engine is out of reach ({unreachable(exc)}); serving "
                      "this node's users among themselves, refusing logins until it is back")
        else:
            self._node.log(f"group {group.prefix} of the cluster is out of reach "
                      f"({unreachable(exc)}); its names cannot log in nor be reached "
                      "until it is back")

    def _lost(self, group: Group, exc: BaseException) -> None:
        self.lost(exc)

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- the lease ---------------------------------------------------------------

    async def register(self) -> str | None:
        """Register this node's lease: the epoch of its inbox, None if another live node
        has its name."""
        found = await self._lease(scripts.REGISTER, secrets.token_hex(8), self._node.inbox_limit)
        if not found:
            return None
        epoch, now = found
        self.group.clock.observe(now, asyncio.get_running_loop().time())
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    async def _renew_lease(self) -> bool:
        """Renew this node's lease: False if it lapsed, or the inbox is gone."""
        now = await self._lease(scripts.RENEW, self.inbox.epoch)
        if now:
            self.group.clock.observe(now, asyncio.get_running_loop().time())
        return bool(now)

    async def _lease(self, script: str, *args: str | int) -> Any:
        """A call of a lease script, on the lease's own connection."""
        lease = self._node.config.lease
        lease_ms, inbox_ms = round(lease * 1000), round((lease + max(lease, INBOX_GRACE)) * 1000)
        return await self.group.lease_calls.submit(
            script, self._node.config.node, self._node.incarnation, lease_ms, inbox_ms,
            self.group.key_prefix, *args)

    async def _heartbeat_forever(self) -> None:
        """Renew the lease a few times per lease; after a lapse or an absence, rejoin."""
        reconciling: asyncio.Task[None] | None = None
        while True:
            if self.group.reachable:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lapse.wait(), self._node.config.lease / 3)
            if not self.group.reachable:
                await asyncio.sleep(RETRY_PAUSE)
            self._lapse.clear()
            if await self._renew() and (reconciling is None or reconciling.done()):
                # beside the heartbeat, which must not wait behind the claims' queue
                reconciling = self._spawn(self._reconcile_now())

    async def _renew(self) -> bool:
        """Renew the lease, or rejoin; whether it was renewed as it was."""
        group = self.group
        try:
            renewed = await self._renew_lease()
            if not renewed:
                self._node.log(f"this node's lease in group {group.prefix} was gone from the "
                          "engine (lapsed, or the engine restarted empty): registering and "
                          "claiming again")
            if renewed and group.reachable:
                group.renewed_at = asyncio.get_running_loop().time()
                return True
            await self._rejoin()
        except EngineErrors as exc:
            self.lost(exc)
            return False
        if not group.reachable:
            group.reachable = True
            self._node.log("the cluster engine is back" if self._node.single
                      else f"group {group.prefix} of the cluster is back")
        return False

    async def _rejoin(self) -> None:
        """Take the lease again, then this node's names as they are now; read the inbox
        (a new one if the engine lost it) and listen again."""
        epoch = await self.register()
        if not epoch:
            raise RedisError(f"node name {self._node.config.node!r} was taken by another node")
        self.group.renewed_at = asyncio.get_running_loop().time()
        self.inbox.open(epoch)
        if not await self._reconcile():
            raise RedisError(f"no answer to this node's claims in group {self.group.prefix}")

    async def _reconcile_now(self) -> None:
        try:
            await self._reconcile()
        except EngineErrors as exc:
            self.lost(exc)

    async def _reconcile(self) -> bool:
        """Make what the group holds for this node match its users (see ``reclaim``), and
        listen again if nobody listens on this node's channel. Whether answered."""
        if not await self._reclaim(self.group):
            return False
        if not await asyncio.wait_for(self._listening(), COMMAND_TIMEOUT):
            self.listener.restart()  # a subscription the engine lost without a word
        return True

    async def _listening(self) -> bool:
        """Whether anyone listens on this node's channel. A sharded channel's count is
        asked of the shard that holds it: any other says 0."""
        channel = self.group.channel
        if isinstance(self._commands, RedisCluster):
            counts = await self._commands.pubsub_shardnumsub(
                channel, **await on_shard_of(self._commands, channel))
        else:
            counts = await self._commands.pubsub_numsub(channel)
        return bool(counts and int(counts[0][1]))
