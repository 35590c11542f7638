"""Reading this node's inbox in one group: a stream of what other nodes sent it.

A route adds deliveries to the stream of the recipient's node; the node reads
them from where it stopped, passes them on, and then trims what it read, in
batches (the trim rides in the same round trip as the next read). What it read
is counted, so the route script knows how much still waits and refuses what would
pass the inbox's limit. A connection lost, a subscription lost, an engine that
hangs or is slow: the reader goes on from its last id, so nothing stored is lost
or read twice. A new epoch (the engine lost the inbox, and the node made a new
one) is a new stream, read from its start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from . import scripts
from .engines import EngineClient, EngineErrors
from .groups import Group
from .listener import RETRY_PAUSE, Lost

READ_COUNT = 100
"""Entries one read takes at most (each is one route's deliveries to this node)."""
BLOCK_MS = 1000
"""How long a read waits in the engine for something to come."""
EPOCHS_KEPT = 4
"""Epochs whose read position is remembered after the node moved to another."""
PATIENCE = 16
"""A read that timed out is tried again with twice the time, up to this many times the
deadline: a big inbox on a loaded machine comes through instead of being read again and
again."""
TRIM_BYTES = 4 << 20
TRIM_READS = 16
"""A trim waits until this many bytes or reads are behind it, or a read found nothing
new (so an idle inbox is trimmed within a read's wait)."""

Take = Callable[[list[bytes]], None]
"""Called with the payloads of the entries of one read, in order."""


CATCH_UP_LOOK = 0.01
"""Seconds between two looks at whether the inbox has been read up to an entry."""


def _order(entry_id: bytes) -> tuple[int, int]:
    """A stream id (``<ms>-<seq>``) as what orders it."""
    ms, _, seq = entry_id.decode().partition("-")
    return int(ms), int(seq or 0)


def following(entry_id: bytes) -> str:
    """The stream id just after ``entry_id`` (``<ms>-<seq>``): where a trim keeps from."""
    ms, _, seq = entry_id.decode().partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


class Inbox:
    """This node's inbox in one group, read on a connection of its own."""

    def __init__(self, group: Group, client: EngineClient, take: Take, lost: Lost,
                 deadline: float) -> None:
        """``deadline``: seconds a read may take beyond its wait before the engine is taken
        for out of reach (enough to carry the whole inbox)."""
        self.group = group
        self._client = client
        self._take = take
        self._lost = lost
        self.read_deadline = deadline
        self.epoch = ""
        self._last = b"0-0"
        """The id of the last entry passed on."""
        self._read_bytes = 0
        """Bytes of this epoch's entries passed on, in all (the engine's count trails it)."""
        self._trimmed = (b"0-0", 0)
        """The last id and the bytes read in all at the last trim."""
        self._behind = 0
        """Reads since the last trim."""
        self._idle = False
        """Whether the last read found nothing new."""
        self._patience = 1
        """The deadline's multiple for the next read (more after a read timed out)."""
        self._task: asyncio.Task[None] | None = None
        self._left: dict[str, tuple[bytes, int]] = {}
        """Where the reading of the last epochs left stopped: the last id and bytes read."""

    def open(self, epoch: str) -> None:
        """Read the inbox of ``epoch`` (what registering in the group gave): a new epoch
        is a new stream, read from its start; one met before (an engine's data came back:
        a failover to a replica that held it) is read on from where its reading stopped."""
        if epoch != self.epoch:
            self.stop()
            if self.epoch:
                self._left[self.epoch] = (self._last, self._read_bytes)
                while len(self._left) > EPOCHS_KEPT:
                    del self._left[next(iter(self._left))]
            self._last, self._read_bytes = self._left.pop(epoch, (b"0-0", 0))
            self.epoch = epoch
            self._trimmed, self._behind = (b"0-0", 0), 0
        if self._task is None:
            self._task = asyncio.create_task(self._read_forever(epoch))

    async def caught_up(self, until: float) -> None:
        """Wait until what the inbox holds now has been passed on (at most until the
        loop's time ``until``; a read that fails meanwhile ends the wait)."""
        loop = asyncio.get_running_loop()
        stream = f"{self.group.inbox}/{self.epoch}"
        newest = await asyncio.wait_for(self._client.execute_command(
            "XREVRANGE", stream, "+", "-", "COUNT", 1), max(until - loop.time(), 0))
        if not newest:
            return
        end = _order(newest[0][0])
        while _order(self._last) < end and self._task is not None and loop.time() < until:
            await asyncio.sleep(CATCH_UP_LOOK)

    def stop(self) -> asyncio.Task[None] | None:
        """Stop reading; the task to wait for, if any."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    async def _read_forever(self, epoch: str) -> None:
        while epoch == self.epoch:
            try:
                await self._read(epoch)
            except (*EngineErrors, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):
                    self._patience = min(2 * self._patience, PATIENCE)
                self._lost(self.group, exc)
                await asyncio.sleep(RETRY_PAUSE)

    async def _read(self, epoch: str) -> None:
        """Read and pass on, from the last id on, until the epoch changes or a call
        fails; trim what was passed on, with a read."""
        stream = f"{self.group.inbox}/{epoch}"
        while epoch == self.epoch:
            deadline = BLOCK_MS / 1000 + self.read_deadline * self._patience
            read = ("XREAD", "COUNT", READ_COUNT, "BLOCK", BLOCK_MS, "STREAMS", stream,
                    self._last)
            trimmed = (self._last, self._read_bytes)
            if self._last != self._trimmed[0] and (
                    self._idle or self._behind >= TRIM_READS
                    or self._read_bytes - self._trimmed[1] >= TRIM_BYTES):
                pipeline = self._client.pipeline(transaction=False)
                pipeline.execute_command(
                    "EVAL", scripts.TRIM, len(self.group.keys), *self.group.keys,
                    self.group.key_prefix, self.group.node, epoch, following(self._last),
                    self._read_bytes)
                pipeline.execute_command(*read)
                trim, reply = await asyncio.wait_for(pipeline.execute(raise_on_error=False),
                                                     deadline)
                if isinstance(reply, BaseException):
                    raise reply
                if trim == 1:
                    self._trimmed, self._behind = trimmed, 0
            else:
                reply = await asyncio.wait_for(self._client.execute_command(*read),
                                               deadline)
            if epoch != self.epoch:
                return  # a new stream meanwhile: what came is not this one's
            self._patience = 1
            self._pass_on(reply)

    def _pass_on(self, reply: Any) -> None:
        entries = reply[0][1] if reply else []
        self._idle = not entries
        self._behind += 1
        payloads: list[bytes] = []
        for entry_id, fields in entries:
            payload = fields.get(b"d") if isinstance(fields, dict) else None
            payloads.append(payload if isinstance(payload, bytes) else b"")
            self._read_bytes += len(payloads[-1])
            self._last = entry_id
        if payloads:
            self._take(payloads)
