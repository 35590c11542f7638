"""The backplane of a cluster: names, leases and routes in a Redis or Valkey engine.

Every node holds a lease in every group, and its names count only while it lives
(see :mod:`.lifecycle`). Each node has an inbox, a stream that a route adds to and
the node reads from where it stopped (see :mod:`.inbox`), and listens on a channel of
its own so that routes know it is there. All calls made in the same moment go to the
engine as one pipeline, one round trip.

The state is split into groups (see :mod:`.groups`), each of which a node reaches
or not on its own. While a group is out of reach the node keeps its own users
talking among themselves, refuses logins of names in that group (it cannot make them
unique) and routes to them (it cannot reach them) until it is back. On a single
engine every group fails and returns at once; on a Redis Cluster a shard out of
reach stops only the names of its groups.
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
from ..names import name_skeleton
from ..sanitize import sanitize
from ..serverlog import LogLine
from ..serving.stats import ENGINE_CALL_BUCKETS, Histogram
from . import scripts
from .calls import UNKNOWN, CallExpired, Unanswered
from .config import ClusterConfig
from .engines import EngineErrors, engine_client, evicting_policies, is_sharded
from .groups import Group, by_group, count_key, group_of, prefixes
from .lifecycle import COMMAND_TIMEOUT, GroupLife, Node, unreachable
from .records import split_records

Log = Callable[[str], None]

HEALTH_CHECK = 1.0
"""A pooled connection idle this long is checked with a PING before use: one the
engine closed meanwhile (a network blip) is replaced, not taken for an outage."""
INBOX_LINES = 4
"""What may wait in a node's inbox in one group, in longest lines (``--max-line``): a
route that would pass it is refused."""
INBOX_MARGIN = 1 << 20


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
        node = Node(config, self._incarnation, INBOX_LINES * config.max_line + INBOX_MARGIN,
                    len(self._groups) == 1, log)
        self._lives = {group: GroupLife(group, node, (self._commands, self._listener),
                                        self._take, self._reclaim, self._find_shards)
                       for group in self._groups}
        self._groups_key = count_key(config.cluster)
        """How many groups the cluster's nodes split it into (the first node says)."""
        self._topology = asyncio.Lock()
        self._mine: dict[str, Group] = {}
        """This node's names, each with its group (found once: a skeleton is not cheap,
        and every heartbeat of every group looks through them)."""
        self._claiming: dict[str, Group] = {}
        """Names whose claim is on its way to the engine, with their groups."""
        self._tasks: list[asyncio.Task[None]] = []
        """The pipelines' and the evictions'."""
        self._junk_seen = False
        """Whether malformed records in this node's inboxes were logged already."""
        self.latencies = Histogram(ENGINE_CALL_BUCKETS)
        """The round trips of the pipelines of calls to the engine, leases' too."""
        for group in self._groups:
            group.calls.timings = group.lease_calls.timings = self.latencies

    def reach(self) -> tuple[int, int, float]:
        """Groups reached, groups in all, and seconds since the oldest lease renewal."""
        now = asyncio.get_running_loop().time()
        return (sum(group.reachable for group in self._groups), len(self._groups),
                max(now - group.renewed_at for group in self._groups))

    # --- the interface the server uses ------------------------------------------

    async def start(self, deliver: Deliver, evict: Evict) -> None:
        self._evict = evict
        where = f"the cluster engine at {self.config.url}"
        try:
            await asyncio.wait_for(self._commands.ping(), COMMAND_TIMEOUT)
        except EngineErrors as exc:
            raise BackplaneError(f"cannot reach {where}: {unreachable(exc)}") from None
        if policies := await evicting_policies(self._commands):
            self.log(LogLine(
                "the cluster engine evicts keys when it reaches its maxmemory (maxmemory-policy "
                f"{sanitize(', '.join(sorted(policies)))}): the inboxes go with them, and "
                "acknowledged messages with the inboxes; set it to noeviction, which refuses "
                "new messages instead (BAD-DEST-USER)", "engine_evicts", level="warning"))
        for group in self._groups:
            self._tasks.append(asyncio.create_task(group.calls.run_forever()))
            self._tasks.append(asyncio.create_task(group.lease_calls.run_forever()))
        try:
            if problem := await self._group_count_problem(strict=True):
                raise BackplaneError(problem)
            found = await asyncio.gather(*(life.register() for life in self._lives.values()))
            epochs = [epoch for epoch in found if epoch]
            if len(epochs) < len(found):
                raise BackplaneError(f"node name {self.config.node!r} is in use by a live "
                                     f"node of cluster {self.config.cluster!r}")
        except EngineErrors as exc:
            raise BackplaneError(f"cannot use {where}: {unreachable(exc)}") from None
        self._deliver = deliver
        for life, epoch in zip(self._lives.values(), epochs, strict=True):
            life.begin(epoch)
        try:
            await asyncio.wait_for(asyncio.gather(*(
                life.listener.subscribed.wait() for life in self._lives.values())),
                COMMAND_TIMEOUT)
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
        self._give_back(name)

    async def settle(self, names: Sequence[str], until: float) -> None:
        """Once the engine has the names back no route stores more for them: what the
        inboxes hold then is read and passed on."""
        given_back = [self._give_back(name) for name in names]
        released = [done for _, done in given_back if done is not None]
        if released:
            left = until - asyncio.get_running_loop().time()
            await asyncio.wait(released, timeout=max(left, 0))
        await asyncio.gather(*(self._lives[group].inbox.caught_up(until) for group in
                               {group for group, _ in given_back} if group.reachable),
                             return_exceptions=True)

    def _give_back(self, name: str) -> tuple[Group, asyncio.Future[Any] | None]:
        """Release ``name`` in its group if reached: the group, and the call if made."""
        group = self._mine.pop(name, None) or self._group_of(name)
        if not group.reachable:
            return group, None
        return group, group.calls.submit(scripts.RELEASE, name_skeleton(name),
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

    async def route(self, parcels: Sequence[Parcel]) -> list[bool | None]:
        """A route whose answer was lost is answered by what the engine says it did,
        asked once the engine can be asked (None when it never could be)."""
        skeletons = [name_skeleton(parcel.recipient) for parcel in parcels]

        async def route(group: Group, where: list[int]) -> list[int]:
            epoch = self._lives[group].inbox.epoch  # (another: the engine lost its data)
            try:
                return await group.calls.route([arg for at in where for arg in (
                    skeletons[at], parcels[at].recipient, parcels[at].lines)])
            except Unanswered as lost:
                self._failed(group, lost.cause)
                return await group.calls.outcome(lost.sent, group.inbox, epoch)
        return [None if sent == UNKNOWN else sent == 1
                for sent in await self._by_group(skeletons, route)]

    async def close(self) -> None:
        reached = [group for group in self._groups if group.reachable]
        with contextlib.suppress(*EngineErrors, TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(group.calls.submit(
                scripts.LEAVE, self.config.node, self._incarnation, group.key_prefix)
                for group in reached), return_exceptions=True), COMMAND_TIMEOUT)
        tasks = [task for life in self._lives.values() for task in life.stop()]
        for group in self._groups:
            group.calls.stop()
            group.lease_calls.stop()
        for task in self._tasks:
            task.cancel()
        tasks += self._tasks
        if tasks:
            await asyncio.wait(tasks, timeout=COMMAND_TIMEOUT)
        await self._commands.aclose()
        await self._beats.aclose()
        await self._listener.aclose()

    # --- calls to the engine ----------------------------------------------------

    def _group_of(self, name: str) -> Group:
        return self._groups[group_of(name_skeleton(name), len(self._groups))]

    async def _group_count_problem(self, strict: bool) -> str | None:
        """How many groups the cluster has is written by the first node, and again by
        every node at each heartbeat (the engine may have restarted empty); a node told
        otherwise would look for names where others do not put them: what is wrong, in
        one line, if so. Not ``strict``: an engine (shard) out of reach is no problem
        here (the group's own calls tell)."""
        count = len(self._groups)
        try:
            await asyncio.wait_for(self._commands.set(self._groups_key, count, nx=True),
                                   COMMAND_TIMEOUT)
            found = await asyncio.wait_for(self._commands.get(self._groups_key),
                                           COMMAND_TIMEOUT)
        except EngineErrors:
            if strict:
                raise
            return None
        if found is None or found == b"%d" % count:
            return None
        if not (isinstance(found, bytes) and found.isdigit() and len(found) <= 6):
            shown = sanitize(str(found)[:60])
            return (f"the group count of cluster {self.config.cluster!r} in the engine "
                    f"({self._groups_key}) is not a number: {shown}; "
                    "delete it, and the first node writes it again")
        return (f"cluster {self.config.cluster!r} is split into {int(found)} groups; start "
                f"this node with --groups {int(found)}")

    async def _claim(self, names: Sequence[str], reclaim: bool,
                     only: Group | None = None) -> list[int | None]:
        """Claim ``names`` (with ``reclaim``: this node's whole share of every group
        reached, or of ``only``, so the rest of its share there is dropped)."""
        skeletons = [name_skeleton(name) for name in names]

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
            self._lives[group].lost(exc)
        elif not isinstance(exc, CallExpired):
            raise exc

    async def _reclaim(self, group: Group) -> bool:
        """Make what ``group`` holds for this node match its users there: claims whose
        users left go (a release lost on its way is made good), this node's names are
        taken again, a user whose name another node took is let go; the group count is
        written again. Whether the claims were answered."""
        if problem := await self._group_count_problem(strict=False):
            raise RedisError(problem)
        names = sorted({name for held in (self._mine, self._claiming)
                        for name, its_group in held.items() if its_group is group})
        results = await self._claim(names, reclaim=True, only=group)
        evicted = []
        for name, result in zip(names, results, strict=True):
            if result is not None and result != 1 and name in self._mine:
                del self._mine[name]
                evicted.append(name)
            elif result == 1 and name not in self._mine and name not in self._claiming:
                # its login failed meanwhile (refused, or its claim came late): no user
                # here holds the name, so it goes, even while the group is thought away
                group.calls.submit(scripts.RELEASE, name_skeleton(name),
                                   f"{self.config.node} {name}")
        if evicted:
            self._spawn(self._evict_when_read(group, evicted))
        return None not in results

    async def _evict_when_read(self, group: Group, names: list[str]) -> None:
        """Let users go whose names another node took, once what the inbox holds now
        (acknowledged for them before) is passed on, at most for as long as a read of the
        whole inbox may take."""
        inbox = self._lives[group].inbox
        until = asyncio.get_running_loop().time() + inbox.read_deadline
        with contextlib.suppress(*EngineErrors, TimeoutError):
            await inbox.caught_up(until)
        for name in names:
            self._evict(name)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

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
