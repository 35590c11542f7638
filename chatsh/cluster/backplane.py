"""The backplane of a cluster: names, leases and routes in a Redis or Valkey engine.

Every node holds a lease that a heartbeat renews; a node's names count only
while its lease lives, so the names of a node that dies free themselves. Each
node listens on its own channel; a route publishes there. All calls made in
the same moment go to the engine as one pipeline, one round trip.

While the engine is out of reach the node says so once, keeps its own users
talking among themselves, refuses logins (it cannot make a name unique) and
routes (it cannot reach anyone), and comes back by itself: re-registers, claims
its users' names again and listens again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from .. import protocol as p
from ..backplane import BackplaneError, Claim, Deliver, Evict, Parcel
from . import scripts
from .config import ClusterConfig
from .engines import engine_client, is_sharded
from .groups import Group, by_group, group_of, prefixes, pump_shard
from .records import split_records

Log = Callable[[str], None]

COMMAND_TIMEOUT = 5.0
HEALTH_CHECK = 1.0
"""A pooled connection idle this long is checked with a PING before use: one the
engine closed meanwhile (a network blip) is replaced, not taken for an outage."""
RETRY_PAUSE = 0.5
"""Seconds between tries to reach the engine while it is out of reach."""
PUBSUB_MARGIN = 8 << 20
"""What the engine's pub/sub buffer needs beyond two of the longest lines."""


def pubsub_limit(setting: str | bytes) -> tuple[int, int, int]:
    """Hard limit, soft limit and soft seconds of the ``pubsub`` class in the engine's
    ``client-output-buffer-limit`` (zeros where it says nothing)."""
    fields = (setting.decode() if isinstance(setting, bytes) else setting).split()
    for at in range(0, len(fields) - 3, 4):
        if fields[at] == "pubsub" and all(f.isdigit() for f in fields[at + 1:at + 4]):
            hard, soft, seconds = (int(f) for f in fields[at + 1:at + 4])
            return hard, soft, seconds
    return 0, 0, 0


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
        self._sharded = is_sharded(config.url)
        """A Redis Cluster: the node's channel is a sharded one (SSUBSCRIBE, SPUBLISH),
        which lives on the shard of the cluster's keys and counts its listeners truly."""
        publish = "SPUBLISH" if self._sharded else "PUBLISH"
        self._commands = engine_client(config.url, socket_timeout=None, **options)
        """No socket timeout (redis-py's default is 5 s): its calls' deadlines grow with
        what they carry (see ScriptCalls)."""
        self._listener = engine_client(config.url, socket_timeout=None, **options)
        self._beats = engine_client(config.url, socket_timeout=COMMAND_TIMEOUT, **options)
        """The lease's own connection: a heartbeat never waits behind a big route."""
        self._groups = [Group(prefix, config.node, self._commands, self._beats, publish)
                        for prefix in prefixes(config.cluster, config.groups)]
        self._groups_key = f"{prefixes(config.cluster, 1)[0]}:groups"
        """How many groups the cluster's nodes split it into (the first node says)."""
        self._reachable = False
        self._renewed_at = float("-inf")
        self._mine: set[str] = set()
        self._claiming: set[str] = set()
        """Names whose claim is on its way to the engine."""
        self._tasks: list[asyncio.Task[None]] = []
        """The pipeline's and the heartbeat's."""
        self._listening_task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._reconciling: asyncio.Task[None] | None = None
        self._junk_seen = False
        """Whether malformed records on this node's channel were logged already."""

    # --- the interface the server uses ------------------------------------------

    async def start(self, deliver: Deliver, evict: Evict) -> None:
        self._evict = evict
        where = f"the cluster engine at {self.config.url}"
        try:
            await self._commands.ping()
        except (RedisError, OSError) as exc:
            raise BackplaneError(f"cannot reach {where}: {_unreachable(exc)}") from None
        for group in self._groups:
            self._tasks.append(asyncio.create_task(group.calls.run_forever()))
            self._tasks.append(asyncio.create_task(group.lease_calls.run_forever()))
        try:
            await self._check_groups()
            if not await self._lease(scripts.REGISTER):
                raise BackplaneError(f"node name {self.config.node!r} is in use by a live "
                                     f"node of cluster {self.config.cluster!r}")
            await self._check_pubsub_limit()
        except (RedisError, OSError) as exc:
            raise BackplaneError(f"cannot use {where}: {_unreachable(exc)}") from None
        self._renewed_at = asyncio.get_running_loop().time()
        self._reachable = True
        self._deliver = deliver
        self._listen_again()
        self._tasks.append(asyncio.create_task(self._heartbeat_forever()))
        try:
            await asyncio.wait_for(self._listening.wait(), COMMAND_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise BackplaneError(f"cannot listen on {where}") from None

    async def claim(self, name: str) -> Claim:
        if not self._holds_lease():
            return Claim.UNAVAILABLE
        self._claiming.add(name)  # a heartbeat's reconcile meanwhile must keep it
        try:
            (result,) = await self._claim([name], reclaim=False)
        except asyncio.CancelledError:
            self.release(name)
            raise
        except (RedisError, OSError) as exc:
            self._lost(exc)
            return Claim.UNAVAILABLE
        finally:
            self._claiming.discard(name)
        if result == 1:
            self._mine.add(name)
            return Claim.GRANTED
        return Claim.TAKEN if result == 0 else Claim.UNAVAILABLE

    def release(self, name: str) -> None:
        self._mine.discard(name)
        if self._reachable:
            skeleton = p.name_skeleton(name)
            self._groups[group_of(skeleton, len(self._groups))].calls.submit(
                scripts.RELEASE, skeleton, f"{self.config.node} {name}")

    async def names(self, limit: int) -> list[str] | None:
        """The first ``limit`` names in order of those the groups give, each at most
        ``limit``."""
        if not self._reachable:
            return None
        try:
            found = await asyncio.gather(*(group.calls.submit(scripts.NAMES, limit)
                                           for group in self._groups))
        except (RedisError, OSError) as exc:
            self._lost(exc)
            return None
        return sorted(name.decode(p.ENCODING, "replace") for names in found
                      for name in names)[:limit]

    async def route(self, parcels: Sequence[Parcel]) -> list[bool]:
        if not self._reachable:
            return [False] * len(parcels)
        skeletons = [p.name_skeleton(parcel.recipient) for parcel in parcels]

        def route(group: Group, where: list[int]) -> Awaitable[list[int]]:
            return group.calls.route([arg for at in where for arg in (
                skeletons[at], parcels[at].recipient, parcels[at].lines)])
        try:
            routed = await self._by_group(skeletons, route)
        except (RedisError, OSError) as exc:
            self._lost(exc)
            return [False] * len(parcels)
        return [bool(sent) for sent in routed]

    async def close(self) -> None:
        if self._reachable:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(group.calls.submit(
                    scripts.LEAVE, self.config.node, self._incarnation)
                    for group in self._groups)), COMMAND_TIMEOUT)
        tasks = [*self._tasks, *(task for task in (self._listening_task, self._reconciling)
                                 if task is not None)]
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

    async def _lease(self, script: str) -> int:
        """Register or renew this node's lease in every group, on the lease's own
        connection; 1 only if every group took it."""
        results = await asyncio.gather(*(group.lease_calls.submit(
            script, self.config.node, self._incarnation, round(self.config.lease * 1000))
            for group in self._groups))
        return int(all(results))

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

    def _holds_lease(self) -> bool:
        age = asyncio.get_running_loop().time() - self._renewed_at
        return self._reachable and age < self.config.lease

    async def _claim(self, names: Sequence[str], reclaim: bool) -> list[int]:
        skeletons = [p.name_skeleton(name) for name in names]

        def claim(group: Group, where: list[int]) -> Awaitable[list[int]]:
            return group.calls.submit(
                scripts.CLAIM, self.config.node, self._incarnation, "1" if reclaim else "0",
                *(arg for at in where for arg in (skeletons[at], names[at])))
        # a reclaim goes to every group: it also drops what it does not name
        return await self._by_group(skeletons, claim, every_group=reclaim)

    async def _by_group(self, skeletons: Sequence[str],
                        call: Callable[[Group, list[int]], Awaitable[list[int]]],
                        every_group: bool = False) -> list[int]:
        """One call to each group for its share of ``skeletons`` (given as positions),
        all at once (to groups without a share too, with ``every_group``); their answers
        in the order of ``skeletons``."""
        positions = by_group(skeletons, len(self._groups))
        asked = [(group, where) for group, where in zip(self._groups, positions, strict=True)
                 if where or every_group]
        answers = await asyncio.gather(*(call(group, where) for group, where in asked))
        results = [0] * len(skeletons)
        for (_, where), got in zip(asked, answers, strict=True):
            for at, answer in zip(where, got, strict=True):
                results[at] = answer
        return results

    def _lost(self, exc: BaseException) -> None:
        if self._reachable:
            self._reachable = False
            self.log(f"the cluster engine is out of reach ({_unreachable(exc)}); serving "
                     "this node's users among themselves, refusing logins until it is back")

    async def _heartbeat_forever(self) -> None:
        """Renew the lease a few times per lease; after a lapse, register and claim again."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.lease / 3 if self._reachable else RETRY_PAUSE)
            try:
                renewed = await self._lease(scripts.RENEW)
                if not renewed:
                    self.log("this node's lease was gone from the engine (lapsed, or the "
                             "engine restarted empty): registering and claiming again")
                if not renewed or not self._reachable:
                    await self._rejoin()
                elif self._reconciling is None or self._reconciling.done():
                    # beside the heartbeat, which must not wait behind the claims' queue
                    self._reconciling = asyncio.create_task(self._reconcile_now())
            except (RedisError, OSError) as exc:
                self._lost(exc)
                continue
            self._renewed_at = loop.time()
            if not self._reachable:
                self._reachable = True
                self.log("the cluster engine is back")

    async def _rejoin(self) -> None:
        """After a lapse or an absence: take the lease again, then this node's names as
        they are now (names whose users left meanwhile go)."""
        if not await self._lease(scripts.REGISTER):
            raise RedisError(f"node name {self.config.node!r} was taken by another node")
        await self._check_pubsub_limit()
        await self._reconcile()

    async def _reconcile_now(self) -> None:
        try:
            await self._reconcile()
        except (RedisError, OSError) as exc:
            self._lost(exc)

    async def _reconcile(self) -> None:
        """Make what the engine holds for this node match its users, at every heartbeat:
        claims whose users left go (a release lost on its way is made good), this
        node's names are taken again, a user whose name another node took is let go;
        and listen again if nobody listens on this node's channel."""
        names = sorted(self._mine | self._claiming)
        for name, result in zip(names, await self._claim(names, reclaim=True), strict=True):
            if result != 1 and name in self._mine:
                self._mine.discard(name)
                self._evict(name)
        if not await self._listeners():
            self._listen_again()  # a subscription the engine lost without a word to us

    async def _listeners(self) -> int:
        """How many listen on this node's channel in the group with fewest. A sharded
        channel's count is asked of the shard that holds it: any other says 0."""
        fewest = None
        for group in self._groups:
            if isinstance(self._commands, RedisCluster):
                owner = self._commands.get_node_from_key(group.channel)
                counts = await self._commands.pubsub_shardnumsub(group.channel,
                                                                 target_nodes=owner)
            else:
                counts = await self._commands.pubsub_numsub(group.channel)
            count = int(counts[0][1]) if counts else 0
            fewest = count if fewest is None else min(fewest, count)
        return fewest or 0

    def _listen_again(self) -> None:
        """Start listening on this node's channel, dropping any earlier subscription."""
        if self._listening_task:
            self._listening_task.cancel()
        self._listening_task = asyncio.create_task(self._listen_forever())

    async def _check_pubsub_limit(self) -> None:
        """Make sure the engine lets a message of the longest line reach a node."""
        needed = 2 * self.config.max_line + PUBSUB_MARGIN
        try:
            config: dict[Any, Any] = await self._commands.config_get("client-output-buffer-limit")
            hard, soft, seconds = pubsub_limit(next(iter(config.values()), ""))
            if (hard == 0 or hard >= needed) and (soft == 0 or soft >= needed):
                return
            await self._commands.config_set("client-output-buffer-limit",
                                            f"pubsub {needed} {needed} {seconds}")
        except ResponseError as exc:
            self.log(f"warning: cannot check or raise the engine's pub/sub output limit ({exc}); "
                     f"lines near {self.config.max_line} bytes need {needed} there, or they "
                     "will not reach other nodes")
            return
        self.log(f"raised the engine's pub/sub output limit from {hard} to {needed} bytes "
                 "so that the longest lines reach other nodes")

    def _take(self, payload: object) -> None:
        """Pass on the well-formed parcels of one message on this node's channel;
        anything else there is dropped, and said once."""
        if isinstance(payload, bytes):
            parcels, dropped = split_records(payload)
        else:
            parcels, dropped = [], 1
        if dropped and not self._junk_seen:
            self._junk_seen = True
            self.log(f"dropped {dropped} malformed record(s) from this node's channel "
                     f"{self._groups[0].channel!r}...; said once, dropped silently from now on")
        if parcels:
            self._deliver(parcels)

    async def _listen_forever(self) -> None:
        """Hand every message on this node's channel to the server; listen again after a
        loss."""
        while True:
            listener = self._listener
            pubsub: PubSub | ClusterPubSub = listener.pubsub()
            channels = [group.channel for group in self._groups]
            subscribed = 0
            pumps: list[asyncio.Task[None]] = []
            try:
                if isinstance(pubsub, ClusterPubSub) and isinstance(listener, RedisCluster):
                    await listener.initialize()
                    await listener.nodes_manager.initialize()  # where the slots are now:
                    await pubsub.ssubscribe(*channels)  # this client sends no command else
                    arrived: asyncio.Queue[Any] = asyncio.Queue()
                    shards = {node.name: node for node in map(
                        listener.get_node_from_key, channels) if node is not None}
                    pumps = [asyncio.create_task(pump_shard(pubsub, node, arrived))
                             for node in shards.values()]
                    receive = arrived.get
                else:
                    await pubsub.subscribe(*channels)
                    receive = functools.partial(pubsub.get_message, timeout=None)
                while True:
                    message = await receive()
                    if isinstance(message, BaseException):
                        raise message
                    if message is None:
                        continue
                    if message["type"] in ("subscribe", "ssubscribe"):
                        subscribed += 1
                        if subscribed == len(channels):
                            self._listening.set()
                    elif message["type"] in ("message", "smessage"):
                        self._take(message["data"])
            except (RedisError, OSError) as exc:
                self._lost(exc)
            finally:
                for pump in pumps:
                    pump.cancel()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(RETRY_PAUSE)

