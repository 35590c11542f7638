"""Script calls to the engine, gathered: whatever waits goes as one pipeline, one round
trip, and every route of the moment as one call of the route script."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from . import scripts
from .engines import EngineClient, EngineErrors, on_shard_of

Arg = str | bytes | int

BASE_DEADLINE = 5.0
"""Seconds a pipeline of small calls may take to be answered."""
ENGINE_RATE = 8 << 20
"""Bytes a second that the deadline of a pipeline grants for what it carries, a rate
any engine beats (a 150 MiB route: 24 s more), so a big route is not taken for an
outage and answered BAD-DEST-USER after it was delivered."""


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


SHAS = {script: _sha(script) for script in (scripts.REGISTER, scripts.RENEW, scripts.CLAIM,
                                            scripts.RELEASE, scripts.NAMES, scripts.ROUTE,
                                            scripts.TRIM, scripts.LEAVE)}


def _retrieve(done: asyncio.Future[Any]) -> None:
    """Mark an unawaited failure as seen (asyncio would log it at exit)."""
    if not done.cancelled():
        done.exception()


@dataclass
class _Call:
    script: str
    args: Sequence[Arg]
    done: asyncio.Future[Any] = field(default_factory=lambda: (
        asyncio.get_running_loop().create_future()))


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
                 listeners: str = "NUMSUB") -> None:
        """``listeners``: the PUBSUB subcommand a route counts a node's listeners with
        (SHARDNUMSUB on a Redis Cluster, where only a sharded channel counts them truly)."""
        self._client = client
        self._keys = list(keys)
        self._key_prefix = key_prefix
        self._listeners = listeners
        self._queue: list[_Call] = []
        self._wake = asyncio.Event()
        self._loaded = False
        self._stopped = False

    def submit(self, script: str, *args: Arg) -> asyncio.Future[Any]:
        """Queue a call of ``script``. The future has its result, or what the engine or the
        connection raised; it may be left unawaited (a release, say)."""
        call = _Call(script, args)
        call.done.add_done_callback(_retrieve)
        self._queue.append(call)
        self._wake.set()
        return call.done

    async def route(self, triples: Sequence[Arg]) -> list[int]:
        """The route script for (skeleton, name, lines) triples, merged with every other
        route of the moment."""
        result: list[int] = await self.submit(scripts.ROUTE, *triples)
        return result

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
        routes = _Entry(scripts.ROUTE, [self._listeners, self._key_prefix], [])
        for call in calls:
            if call.script is scripts.ROUTE:
                first = (len(routes.args) - 2) // 3
                routes.args += call.args
                routes.answers.append((call, slice(first, (len(routes.args) - 2) // 3)))
            else:
                entries.append(_Entry(call.script, list(call.args), [(call, None)]))
        if routes.answers:
            entries.append(routes)
        return entries

    async def _run(self, entries: list[_Entry]) -> None:
        try:
            if not self._loaded:
                shard = await on_shard_of(self._client, self._keys[0])
                for script in SHAS:  # on this group's shard: another may be out of reach
                    await self._client.execute_command("SCRIPT LOAD", script, **shard)
                self._loaded = True
            pipeline = self._client.pipeline(transaction=False)
            carried = 0
            for entry in entries:
                pipeline.execute_command(  # (a cluster's pipeline refuses evalsha() itself)
                    "EVALSHA", SHAS[entry.script], len(self._keys), *self._keys, *entry.args)
                carried += sum(len(arg) for arg in entry.args if isinstance(arg, bytes))
            results = await asyncio.wait_for(pipeline.execute(raise_on_error=False),
                                             BASE_DEADLINE + carried / ENGINE_RATE)
        except EngineErrors as exc:
            self._loaded = False
            results = [exc] * len(entries)
        retry: list[_Call] = []
        for entry, result in zip(entries, results, strict=True):
            for call, part in entry.answers:
                if call.done.done():
                    continue
                if isinstance(result, NoScriptError):
                    self._loaded = False  # the engine restarted meanwhile
                    retry.append(call)
                elif isinstance(result, BaseException):
                    call.done.set_exception(result)
                else:
                    call.done.set_result(result if part is None else result[part])
        self._queue[:0] = retry
