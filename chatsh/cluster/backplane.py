"""The backplane of a cluster: names, leases and routes in a Redis or Valkey engine.

Every node holds a lease that a heartbeat renews; a node's names count only
while its lease lives, so the names of a node that dies free themselves. Each
node has an inbox, a stream that a route adds to and the node reads from where it
stopped (see :mod:`.inbox`), and listens on a channel of its own so that routes
know it is there. All calls made in the same moment go to the engine as one
pipeline, one round trip.

The state is split into groups (see :mod:`.groups`), each of which a node reaches
or not on its own. While a group is out of reach the node says so once, keeps
its own users talking among themselves, refuses logins of names in that group
(it cannot make them unique) and routes to them (it cannot reach them), and
comes back by itself: re-registers there, claims its users' names in the group
again and listens again. On a single engine every group fails and returns at
once; on a Redis Cluster a shard out of reach stops only the names of its groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .. import protocol as p
from ..backplane import BackplaneError, Claim, Deliver, Evict, Parcel
from . import scripts
from .calls import BASE_DEADLINE, ENGINE_RATE, CallExpired
from .config import ClusterConfig
from .engines import EngineErrors, engine_client, is_sharded, on_shard_of
from .groups import Group, by_group, group_of, prefixes
from .inbox import Inbox
from .listener import RETRY_PAUSE, GroupListener
from .records import split_records

Log = Callable[[str], None]

COMMAND_TIMEOUT = 5.0
HEALTH_CHECK = 1.0
"""A pooled connection idle this long is checked with a PING before use: one the
engine closed meanwhile (a network blip) is replaced, not taken for an outage."""
INBOX_LINES = 4
"""What may wait in a node's inbox in one group, in longest lines (``--max-line``): a
route that would pass it is refused."""
INBOX_MARGIN = 1 << 20


def _unreachable(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class RedisBackplane:
    """A node of a cluster, on one engine."""

    def __init__(self, config: ClusterConfig, log: Log) -> None:
        self.config = config
        self.log = log
        self._incarnation = secrets.token_hex(8)
        options: dict[str, Any] = {"socket_connect_timeout": COMMAND_TIMEOUT,
                                   "retry": Retry(NoBackoff(), 0),
                                   "health_check_interval": HEALTH_CHECK}
        listeners = "SHARDNUMSUB" if is_sharded(config.url) else "NUMSUB"
        """On a Redis Cluster the node's channel is a sharded one (SSUBSCRIBE), which lives
        on the shard of the group's keys and counts its listeners truly."""
        self._commands = engine_client(config.url, socket_timeout=None, **options)
        """No socket timeout (redis-py's default is 5 s): its calls' deadlines grow with
        what they carry (see ScriptCalls)."""
        self._listener = engine_client(config.url, socket_timeout=None, **options)
        self._beats = engine_client(config.url, socket_timeout=COMMAND_TIMEOUT, **options)
        """The lease's own connection: a heartbeat never waits behind a big route."""
        self._groups = [Group(prefix, config.node, self._commands, self._beats, listeners)
                        for prefix in prefixes(config.cluster, config.groups)]
        self._inbox_limit = INBOX_LINES * config.max_line + INBOX_MARGIN
        self._inboxes = [Inbox(group, self._listener, self._take, self._lost,
                               BASE_DEADLINE + self._inbox_limit / ENGINE_RATE)
                         for group in self._groups]
        self._groups_key = f"{prefixes(config.cluster, 1)[0]}:groups"
        """How many groups the cluster's nodes split it into (the first node says)."""
        self._listeners = [GroupListener(group, self._listener, self._lost, self._find_shards)
                           for group in self._groups]
        self._topology = asyncio.Lock()
        self._mine: dict[str, Group] = {}
        """This node's names, each with its group (found once: a skeleton is not cheap,
        and every heartbeat of every group looks through them)."""
        self._claiming: dict[str, Group] = {}
        """Names whose claim is on its way to the engine, with their groups."""
        self._tasks: list[asyncio.Task[None]] = []
        """The pipelines' and the heartbeats' (one per group)."""
        self._reconciling: set[asyncio.Task[None]] = set()
        self._junk_seen = False
        """Whether malformed records in this node's inboxes were logged already."""

    # --- the interface the server uses ------------------------------------------

    async def start(self, deliver: Deliver, evict: Evict) -> None:
        self._evict = evict
        where = f"the cluster engine at {self.config.url}"
        try:
            await self._commands.ping()
        except EngineErrors as exc:
            raise BackplaneError(f"cannot reach {where}: {_unreachable(exc)}") from None
        for group in self._groups:
            self._tasks.append(asyncio.create_task(group.calls.run_forever()))
            self._tasks.append(asyncio.create_task(group.lease_calls.run_forever()))
        try:
            await self._check_groups()
            found = await asyncio.gather(*(self._register(group) for group in self._groups))
            epochs = [epoch for epoch in found if epoch]
            if len(epochs) < len(found):
                raise BackplaneError(f"node name {self.config.node!r} is in use by a live "
                                     f"node of cluster {self.config.cluster!r}")
        except EngineErrors as exc:
            raise BackplaneError(f"cannot use {where}: {_unreachable(exc)}") from None
        now = asyncio.get_running_loop().time()
        for group in self._groups:
            group.renewed_at, group.reachable = now, True
        self._deliver = deliver
        for inbox, epoch in zip(self._inboxes, epochs, strict=True):
            inbox.open(epoch)
        for listener in self._listeners:
            listener.restart()
        self._tasks += [asyncio.create_task(self._heartbeat_forever(group, listener))
                        for group, listener in zip(self._groups, self._listeners, strict=True)]
        try:
            await asyncio.wait_for(asyncio.gather(*(
                listener.subscribed.wait() for listener in self._listeners)), COMMAND_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise BackplaneError(f"cannot listen on {where}") from None

    async def claim(self, name: str) -> Claim:
        group = self._group_of(name)
        if not group.holds_lease(asyncio.get_running_loop().time(), self.config.lease):
            return Claim.UNAVAILABLE
        self._claiming[name] = group  # a heartbeat's reconcile meanwhile must keep it
        try:
            (result,) = await self._claim([name], reclaim=False)
        except asyncio.CancelledError:
            self.release(name)
            raise
        finally:
            self._claiming.pop(name, None)
        if result == 1:
            self._mine[name] = group
            return Claim.GRANTED
        return Claim.TAKEN if result == 0 else Claim.UNAVAILABLE

    def release(self, name: str) -> None:
        group = self._mine.pop(name, None) or self._group_of(name)
        if group.reachable:
            group.calls.submit(scripts.RELEASE, p.name_skeleton(name),
                               f"{self.config.node} {name}")

    async def names(self, limit: int) -> list[str] | None:
        """The first ``limit`` names in order of those the groups give, each at most
        ``limit``; for a group out of reach, this node's own names in it (None when no
        group is reached)."""
        reached = [group for group in self._groups if group.reachable]
        if not reached:
            return None
        found = await asyncio.gather(*(group.calls.submit(scripts.NAMES, limit)
                                       for group in reached), return_exceptions=True)
        names: list[str] = []
        answered = set()
        for group, got in zip(reached, found, strict=True):
            if isinstance(got, BaseException):
                self._failed(group, got)
            else:
                answered.add(group)
                names += (name.decode(p.ENCODING, "replace") for name in got)
        names += (name for name, group in self._mine.items() if group not in answered)
        return sorted(names)[:limit]

    async def route(self, parcels: Sequence[Parcel]) -> list[bool]:
        skeletons = [p.name_skeleton(parcel.recipient) for parcel in parcels]

        def route(group: Group, where: list[int]) -> Awaitable[list[int]]:
            return group.calls.route([arg for at in where for arg in (
                skeletons[at], parcels[at].recipient, parcels[at].lines)])
        return [sent == 1 for sent in await self._by_group(skeletons, route)]

    async def close(self) -> None:
        reached = [group for group in self._groups if group.reachable]
        with contextlib.suppress(*EngineErrors, TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(group.calls.submit(
                scripts.LEAVE, self.config.node, self._incarnation, group.key_prefix)
                for group in reached), return_exceptions=True), COMMAND_TIMEOUT)
        stopped = [reader.stop() for reader in self._listeners]
        stopped += [inbox.stop() for inbox in self._inboxes]
        tasks = [*self._tasks, *self._reconciling, *(task for task in stopped if task)]
        for group in self._groups:
            group.calls.stop()
            group.lease_calls.stop()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=COMMAND_TIMEOUT)
        await self._commands.aclose()
        await self._beats.aclose()
        await self._listener.aclose()

    # --- calls to the engine ----------------------------------------------------

    def _group_of(self, name: str) -> Group:
        return self._groups[group_of(p.name_skeleton(name), len(self._groups))]

    async def _register(self, group: Group) -> str | None:
        """Register this node's lease in ``group``: the epoch of its inbox there, None if
        another live node has its name."""
        found = await self._lease(group, scripts.REGISTER, secrets.token_hex(8),
                                  self._inbox_limit)
        if not found:
            return None
        epoch, now = found
        group.clock.observe(now, asyncio.get_running_loop().time())
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    async def _renew_lease(self, group: Group) -> bool:
        """Renew this node's lease in ``group``: False if it lapsed, or the inbox is gone."""
        inbox = self._inboxes[self._groups.index(group)]
        now = await self._lease(group, scripts.RENEW, inbox.epoch)
        if now:
            group.clock.observe(now, asyncio.get_running_loop().time())
        return bool(now)

    async def _lease(self, group: Group, script: str, *args: str | int) -> Any:
        """A call of a lease script in ``group``, on the lease's own connection."""
        lease_ms = round(self.config.lease * 1000)
        return await group.lease_calls.submit(script, self.config.node, self._incarnation,
                                              lease_ms, 2 * lease_ms, group.key_prefix, *args)

    async def _check_groups(self) -> None:
        """The first node sets how many groups the cluster has; a node told otherwise
        would look for names where others do not put them, and is refused."""
        count = len(self._groups)
        await self._commands.set(self._groups_key, count, nx=True)
        found = await self._commands.get(self._groups_key)
        if found is not None and int(found) != count:
            raise BackplaneError(f"cluster {self.config.cluster!r} is split into "
                                 f"{int(found)} groups; start this node with --groups "
                                 f"{int(found)}")

    async def _claim(self, names: Sequence[str], reclaim: bool,
                     only: Group | None = None) -> list[int | None]:
        """Claim ``names`` (with ``reclaim``: this node's whole share of every group
        reached, or of ``only``, so the rest of its share there is dropped)."""
        skeletons = [p.name_skeleton(name) for name in names]

        def claim(group: Group, where: list[int]) -> Awaitable[list[int]]:
            return group.calls.submit(
                scripts.CLAIM, self.config.node, self._incarnation, "1" if reclaim else "0",
                *(arg for at in where for arg in (skeletons[at], names[at])))
        return await self._by_group(skeletons, claim, every_group=reclaim, only=only)

    async def _by_group(self, skeletons: Sequence[str],
                        call: Callable[[Group, list[int]], Awaitable[list[int]]],
                        every_group: bool = False, only: Group | None = None
                        ) -> list[int | None]:
        """One call to each group reached for its share of ``skeletons`` (given as
        positions), all at once (to groups without a share too, with ``every_group``;
        to ``only`` alone if given); their answers in the order of ``skeletons``, None
        for those of a group out of reach."""
        positions = by_group(skeletons, len(self._groups))
        asked = [(group, where) for group, where in zip(self._groups, positions, strict=True)
                 if (where or every_group) and (group.reachable if only is None
                                                else group is only)]
        answers = await asyncio.gather(*(call(group, where) for group, where in asked),
                                       return_exceptions=True)
        results: list[int | None] = [None] * len(skeletons)
        for (group, where), got in zip(asked, answers, strict=True):
            if isinstance(got, BaseException):
                self._failed(group, got)
                continue
            for at, answer in zip(where, got, strict=True):
                results[at] = answer
        return results

    def _failed(self, group: Group, exc: BaseException) -> None:
        """A call to ``group`` failed: the group is out of reach, unless the call only
        waited past its deadline behind others; anything else is raised."""
        if isinstance(exc, EngineErrors):
            self._lost(group, exc)
        elif not isinstance(exc, CallExpired):
            raise exc

    def _lost(self, group: Group, exc: BaseException) -> None:
        if not group.reachable:
            return
        group.reachable = False
        group.clock.reset()  # another engine may answer next (a restart, a failover)
        if len(self._groups) == 1:
            self.log(f"the cluster engine is out of reach ({_unreachable(exc)}); serving "
                     "this node's users among themselves, refusing logins until it is back")
        else:
            self.log(f"group {group.prefix} of the cluster is out of reach "
                     f"({_unreachable(exc)}); its names cannot log in nor be reached "
                     "until it is back")

    def _back(self, group: Group) -> None:
        group.reachable = True
        self.log("the cluster engine is back" if len(self._groups) == 1
                 else f"group {group.prefix} of the cluster is back")

    async def _heartbeat_forever(self, group: Group, listener: GroupListener) -> None:
        """Renew the lease in ``group`` a few times per lease, apart from the other groups
        (a shard that hangs holds back the renewals of its own groups only); after a
        lapse or an absence, register and claim again there."""
        reconciling: asyncio.Task[None] | None = None
        while True:
            await asyncio.sleep(self.config.lease / 3 if group.reachable else RETRY_PAUSE)
            if await self._renew(group, listener) and (reconciling is None
                                                       or reconciling.done()):
                # beside the heartbeat, which must not wait behind the claims' queue
                reconciling = asyncio.create_task(self._reconcile_now(group, listener))
                self._reconciling.add(reconciling)
                reconciling.add_done_callback(self._reconciling.discard)

    async def _renew(self, group: Group, listener: GroupListener) -> bool:
        """Renew the lease in ``group``, or rejoin it; whether it was renewed as it was."""
        try:
            renewed = await self._renew_lease(group)
            if not renewed:
                self.log(f"this node's lease in group {group.prefix} was gone from the engine "
                         "(lapsed, or the engine restarted empty): registering and claiming "
                         "again")
            if renewed and group.reachable:
                group.renewed_at = asyncio.get_running_loop().time()
                return True
            await self._rejoin(group, listener)
        except EngineErrors as exc:
            self._lost(group, exc)
            return False
        if not group.reachable:
            self._back(group)
        return False

    async def _rejoin(self, group: Group, listener: GroupListener) -> None:
        """After a lapse or an absence: take the lease in ``group`` again, then this
        node's names there as they are now, and listen there again."""
        epoch = await self._register(group)
        if not epoch:
            raise RedisError(f"node name {self.config.node!r} was taken by another node")
        group.renewed_at = asyncio.get_running_loop().time()
        self._inboxes[self._groups.index(group)].open(epoch)
        if not await self._reconcile(group, listener):
            raise RedisError(f"no answer to this node's claims in group {group.prefix}")

    async def _reconcile_now(self, group: Group, listener: GroupListener) -> None:
        try:
            await self._reconcile(group, listener)
        except EngineErrors as exc:
            self._lost(group, exc)

    async def _reconcile(self, group: Group, listener: GroupListener) -> bool:
        """Make what ``group`` holds for this node match its users there: claims whose
        users left go (a release lost on its way is made good), this node's names are
        taken again, a user whose name another node took is let go; and listen again
        if nobody listens on this node's channel there. Whether the claims were
        answered."""
        names = sorted({name for held in (self._mine, self._claiming)
                        for name, its_group in held.items() if its_group is group})
        results = await self._claim(names, reclaim=True, only=group)
        for name, result in zip(names, results, strict=True):
            if result is not None and result != 1 and name in self._mine:
                del self._mine[name]
                self._evict(name)
        if None in results:
            return False
        if not await self._listening(group):
            listener.restart()  # a subscription the engine lost without a word
        return True

    async def _listening(self, group: Group) -> bool:
        """Whether anyone listens on this node's channel in ``group``. A sharded
        channel's count is asked of the shard that holds it: any other says 0."""
        if isinstance(self._commands, RedisCluster):
            counts = await self._commands.pubsub_shardnumsub(
                group.channel, **await on_shard_of(self._commands, group.channel))
        else:
            counts = await self._commands.pubsub_numsub(group.channel)
        return bool(counts and int(counts[0][1]))

    async def _find_shards(self) -> None:
        """Ask where the slots are now (for a listener about to subscribe), one at a time."""
        async with self._topology:
            listener = self._listener
            if isinstance(listener, RedisCluster):
                await listener.initialize()
                await listener.nodes_manager.initialize()

    def _take(self, payloads: list[bytes]) -> None:
        """Pass on the well-formed parcels of entries read from an inbox; anything else
        there is dropped, and said once."""
        parcels: list[Parcel] = []
        dropped = 0
        for payload in payloads:
            good, bad = split_records(payload)
            parcels += good
            dropped += bad
        if dropped and not self._junk_seen:
            self._junk_seen = True
            self.log(f"dropped {dropped} malformed record(s) from this node's inbox "
                     f"{self._groups[0].inbox!r}...; said once, dropped silently from now on")
        if parcels:
            self._deliver(parcels)
