"""Script calls to the engine, gathered: whatever waits goes as one pipeline, one round
trip, and every route of the moment as one call of the route script.

Every call has a deadline, counted from when it was made (5 s, and more for what it
carries): the wait in the queue, the loading of the scripts and the round trip all
count, and at the deadline the call fails. One still queued then was never sent
(:class:`CallExpired`: the engine is busy, not known to be away); one on its way
raises TimeoutError. A claim and a route also carry their deadline into the engine,
on the engine's clock (see :class:`EngineClock`), and do nothing there when they come
late: a call the node gave up on never acts later.

A route whose answer is lost (its connection cut, its deadline passed while it was
on its way) may have acted: the node asks the engine what it did, by the id each route
carries, before it answers its sender (see :meth:`ScriptCalls.outcome`), so that a
refusal is true."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from ..serving.stats import Histogram
from . import scripts
from .engines import EngineClient, EngineErrors, on_shard_of

Arg = str | bytes | int

BASE_DEADLINE = 5.0
"""Seconds a pipeline of small calls may take to be answered."""
ENGINE_RATE = 8 << 20
"""Bytes a second that the deadline of a pipeline grants for what it carries, a rate
any engine beats (a 150 MiB route: 24 s more), so a big route is not taken for an
outage and answered BAD-DEST-USER after it was delivered."""
ENGINE_MARGIN = 0.5
"""Seconds before the node gives up on a call that the engine must have run it by: its
answer has that long to come back."""
DEADLINED = (scripts.CLAIM, scripts.ROUTE)
"""The scripts that carry their deadline into the engine."""
OUTCOME_WAIT = 30.0
"""Seconds a node asks the engine what a route whose answer was lost did, from when the
answer was lost; the engine keeps a route's answer that long past its deadline, and
more."""
RECORD_MARGIN = 5.0
"""Seconds a route's answer outlives the longest a node may ask for it."""
ASK_PAUSE = 0.2
"""Seconds between two tries to ask the engine what a route did."""
UNKNOWN = -1
"""A route's answer per recipient when the engine never told what it did."""


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


SHAS = {script: _sha(script) for script in (scripts.REGISTER, scripts.RENEW, scripts.CLAIM,
                                            scripts.RELEASE, scripts.NAMES, scripts.ROUTE,
                                            scripts.TRIM, scripts.LEAVE, scripts.OUTCOME)}


class CallExpired(Exception):
    """A call's deadline passed while it waited its turn: it was never sent."""


@dataclass(frozen=True)
class SentRoute:
    """A route call as it went to the engine: what to ask about it if its answer is lost."""

    route: str
    """The id of the route script's call, which may answer several routes."""
    deadline_ms: int
    """On the engine's clock: from then on the call does nothing."""
    part: slice
    """This route's part of the call's answer."""


class Unanswered(Exception):
    """A route went to the engine and no answer came back: it may have acted."""

    def __init__(self, sent: SentRoute, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.sent = sent
        self.cause = cause


def _retrieve(done: asyncio.Future[Any]) -> None:
    """Mark an unawaited failure as seen (asyncio would log it at exit)."""
    if not done.cancelled():
        done.exception()


class EngineClock:
    """The engine's clock as seen from this node's (the event loop's), from the engine's
    time in the answers to the lease calls. Each answer tells that the engine's clock was
    at least its time when it arrived, so ``engine time - arrival`` is at most the true
    offset: the largest of the last few is the estimate, and a deadline converted with it
    comes early on the engine's clock, never late."""

    def __init__(self) -> None:
        self._offsets: deque[float] = deque(maxlen=8)

    def observe(self, engine_ms: int, arrived: float) -> None:
        self._offsets.append(engine_ms - arrived * 1000)

    def reset(self) -> None:
        """Forget (another engine may answer now: a restart, a failover)."""
        self._offsets.clear()

    @property
    def known(self) -> bool:
        """Whether an answer told the engine's time since the last reset."""
        return bool(self._offsets)

    def engine_ms(self, moment: float) -> int:
        """``moment`` (event loop time) on the engine's clock; 0 when unknown yet."""
        return max(1, round(moment * 1000 + max(self._offsets))) if self._offsets else 0


@dataclass
class _Call:
    script: str
    args: Sequence[Arg]
    deadline: float
    """Event loop time."""
    done: asyncio.Future[Any] = field(default_factory=lambda: (
        asyncio.get_running_loop().create_future()))
    sent: SentRoute | None = None
    """A route's, once it may have gone to the engine."""


@dataclass
class _Entry:
    """One script call in a pipeline, answering one or more waiting calls."""

    script: str
    args: list[Arg]
    answers: list[tuple[_Call, slice | None]]
    """Each waiting call and its part of the result (None: all of it)."""


class ScriptCalls:
    """Runs the scripts of :mod:`scripts` on one engine connection pool, in order."""

    def __init__(self, client: EngineClient, keys: Sequence[str], key_prefix: str,
                 listeners: str = "NUMSUB", clock: EngineClock | None = None) -> None:
        """``listeners``: the PUBSUB subcommand a route counts a node's listeners with
        (SHARDNUMSUB on a Redis Cluster, where only a sharded channel counts them truly)."""
        self.clock = clock or EngineClock()
        self._client = client
        self._keys = list(keys)
        self._key_prefix = key_prefix
        self._listeners = listeners
        self._queue: list[_Call] = []
        self._wake = asyncio.Event()
        self._loaded = False
        self._stopped = False
        self._route_ids = (f"{secrets.token_hex(8)}.{number}" for number in itertools.count())
        """Ids of this node's route calls, unique in the cluster."""
        self.timings: Histogram | None = None
        """Where each pipeline's round trip is counted, if anywhere."""

    def submit(self, script: str, *args: Arg) -> asyncio.Future[Any]:
        """Queue a call of ``script``. The future has its result, or what the engine or the
        connection raised; it may be left unawaited (a release, say)."""
        loop = asyncio.get_running_loop()
        carried = sum(len(arg) for arg in args if isinstance(arg, bytes))
        call = _Call(script, args, loop.time() + BASE_DEADLINE + carried / ENGINE_RATE)
        timer = loop.call_at(call.deadline, self._expire, call)
        call.done.add_done_callback(_retrieve)
        call.done.add_done_callback(lambda _: timer.cancel())
        self._queue.append(call)
        self._wake.set()
        return call.done

    def _expire(self, call: _Call) -> None:
        if call.done.done():
            return
        if call in self._queue:
            self._queue.remove(call)
            call.done.set_exception(CallExpired())
        else:
            call.done.set_exception(_failure(call, TimeoutError()))

    async def route(self, triples: Sequence[Arg]) -> list[int]:
        """The route script for (skeleton, name, lines) triples, merged with every other
        route of the moment. :class:`Unanswered` if it went and no answer came."""
        result: list[int] = await self.submit(scripts.ROUTE, *triples)
        return result

    async def outcome(self, sent: SentRoute, inbox: str, epoch: str) -> list[int]:
        """What a route whose answer was lost did, per triple, asked of the engine until
        it tells, at most :data:`OUTCOME_WAIT` seconds: :data:`UNKNOWN` each if it never
        did, or if this node's ``inbox`` no longer has the ``epoch`` it had when the route
        went (the engine lost its data since). Asking fences the route if it has not run
        yet, so the answer holds."""
        count = sent.part.stop - sent.part.start
        loop = asyncio.get_running_loop()
        give_up = loop.time() + OUTCOME_WAIT
        fence_ms = round((OUTCOME_WAIT + RECORD_MARGIN) * 1000)
        while True:
            try:
                answer = await self.submit(scripts.OUTCOME, self._key_prefix, sent.route,
                                           sent.deadline_ms, fence_ms, inbox, epoch)
            except (*EngineErrors, CallExpired):
                answer = None
            if isinstance(answer, bytes):
                marks = answer[sent.part] if answer else b"0" * count
                if len(marks) != count or marks.strip(b"01"):  # "?", or junk in its place
                    return [UNKNOWN] * count
                return [1 if mark == ord("1") else 0 for mark in marks]
            if loop.time() >= give_up:
                return [UNKNOWN] * count
            await asyncio.sleep(ASK_PAUSE)

    async def run_forever(self) -> None:
        """Run what is queued until :meth:`stop` (a cancel may be swallowed by the client
        library while it reconnects: the flag ends the loop all the same)."""
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            while self._queue and not self._stopped:
                calls, self._queue = self._queue, []
                await self._run(self._entries(calls))

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _entries(self, calls: list[_Call]) -> list[_Entry]:
        entries: list[_Entry] = []
        routes = _Entry(scripts.ROUTE, [], [])
        for call in calls:
            if call.script is scripts.ROUTE:
                first = len(routes.args) // 3
                routes.args += call.args
                routes.answers.append((call, slice(first, len(routes.args) // 3)))
            else:
                entries.append(_Entry(call.script, list(call.args), [(call, None)]))
        if routes.answers:
            last = max(call.deadline for call, _ in routes.answers)
            kept = last - asyncio.get_running_loop().time() + OUTCOME_WAIT + RECORD_MARGIN
            routes.args[:0] = [self._listeners, self._key_prefix, next(self._route_ids),
                               round(kept * 1000)]
            entries.append(routes)
        return entries

    async def _run(self, entries: list[_Entry]) -> None:
        """Run ``entries``; give up on them when the last of their calls' deadlines has
        passed (each call fails at its own)."""
        last = max(call.deadline for entry in entries for call, _ in entry.answers)
        lost: BaseException | None = None
        try:
            started = asyncio.get_running_loop().time()
            results = await asyncio.wait_for(self._execute(entries),
                                             last - asyncio.get_running_loop().time())
            if self.timings is not None:
                self.timings.observe(asyncio.get_running_loop().time() - started)
        except EngineErrors as exc:  # (a TimeoutError among them)
            self._loaded = False
            results = [lost := exc] * len(entries)
        retry: list[_Call] = []
        for entry, result in zip(entries, results, strict=True):
            for call, part in entry.answers:
                if call.done.done():
                    continue
                if isinstance(result, NoScriptError):
                    self._loaded = False  # the engine restarted meanwhile
                    call.sent = None  # (the script did not run)
                    retry.append(call)
                elif isinstance(result, ResponseError) and result is not lost:
                    call.done.set_exception(result)  # the engine's own answer: a refusal
                elif isinstance(result, BaseException):
                    call.done.set_exception(_failure(call, result))
                else:
                    call.done.set_result(result if part is None else result[part])
        self._queue[:0] = retry

    async def _execute(self, entries: list[_Entry]) -> list[Any]:
        """Load the scripts if the engine may lack them, then run ``entries`` as one
        pipeline, those in :data:`DEADLINED` with the first deadline of their calls (less
        :data:`ENGINE_MARGIN`), on the engine's clock (asked first if unknown)."""
        if not self._loaded:
            shard = await on_shard_of(self._client, self._keys[0])
            for script in SHAS:  # on this group's shard: another may be out of reach
                await self._client.execute_command("SCRIPT LOAD", script, **shard)
            self._loaded = True
        if not self.clock.known and any(entry.script in DEADLINED for entry in entries):
            await self._ask_time()
        pipeline = self._client.pipeline(transaction=False)
        for entry in entries:
            first = min(call.deadline for call, _ in entry.answers)
            deadline = ([self.clock.engine_ms(first - ENGINE_MARGIN)]
                        if entry.script in DEADLINED else [])
            if entry.script is scripts.ROUTE:
                for call, part in entry.answers:
                    assert part is not None
                    call.sent = SentRoute(str(entry.args[2]), deadline[0], part)
            pipeline.execute_command(  # (a cluster's pipeline refuses evalsha() itself)
                "EVALSHA", SHAS[entry.script], len(self._keys), *self._keys, *deadline,
                *entry.args)
        results: list[Any] = await pipeline.execute(raise_on_error=False)
        return results

    async def _ask_time(self) -> None:
        """Learn the engine's clock (forgotten when the engine was taken for out of
        reach), so that a claim or route never goes without its deadline."""
        shard = await on_shard_of(self._client, self._keys[0])
        seconds, micros = await self._client.execute_command("TIME", **shard)
        self.clock.observe(int(seconds) * 1000 + int(micros) // 1000,
                           asyncio.get_running_loop().time())


def _failure(call: _Call, exc: BaseException) -> BaseException:
    """What a call that failed with ``exc`` raises: a route that may have gone to the
    engine is :class:`Unanswered`."""
    return exc if call.sent is None else Unanswered(call.sent, exc)
