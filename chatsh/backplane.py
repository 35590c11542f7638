"""Where a server claims names and routes messages beyond its own connections.

The server keeps its own connections; the backplane knows every logged-in name
of the whole chat and carries deliveries to the other servers (nodes) of a
cluster. :class:`LocalBackplane` is the single server: every name lives here
and there is nowhere else to route to. ``chatsh.cluster`` holds the version
that spans machines.

A payload handed to :data:`Deliver` is a run of records, one per recipient:
``<recipient> SP <length>\\n`` and then ``length`` bytes of DELIVERY lines, so
a node passes each record's lines on in one write without looking at them.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .names import name_skeleton


class Claim(enum.Enum):
    GRANTED = "granted"
    TAKEN = "taken"
    UNAVAILABLE = "unavailable"
    """Uniqueness cannot be checked now (the cluster engine is out of reach)."""


@dataclass(frozen=True, slots=True)
class Parcel:
    """``DELIVERY`` lines (each ending in ``\n``) for one recipient."""

    recipient: str
    lines: bytes


Deliver = Callable[[Sequence[Parcel]], None]
"""Called with parcels for this node's users."""

Evict = Callable[[str], None]
"""Called with a local user's name that another node now holds."""


MAX_LISTED = 100_000
"""Names a LIST-OK gives at most, echobot among them: however many users a cluster
has, the answer stays one bounded line."""


class BackplaneError(Exception):
    """The backplane cannot start; the message says why, in one line."""


class Backplane(Protocol):
    async def start(self, deliver: Deliver, evict: Evict) -> None:
        """Begin receiving deliveries for this node's users."""

    async def claim(self, name: str) -> Claim:
        """Take ``name`` for a user of this node unless a look-alike is held."""

    def release(self, name: str) -> None:
        """Give ``name`` back (a user of this node left)."""

    async def settle(self, names: Sequence[str], until: float) -> None:
        """A stopping node's: give ``names`` back, then pass on what was routed to them
        before, so every SEND-OK for them is kept; until the loop's time ``until``."""

    async def names(self, limit: int) -> list[str] | None:
        """Logged-in names, at most ``limit`` of them, or None when they cannot be known
        now."""

    async def route(self, parcels: Sequence[Parcel]) -> list[bool | None]:
        """Carry each parcel to the node holding its recipient; True for those handed
        to a live node, False for those that were not and never will be, None when
        that cannot be known (the cluster's engine stayed out of reach)."""

    async def close(self) -> None:
        """Give back every name of this node and stop."""


class LocalBackplane:
    """One server on its own: names are unique among its users, routes go nowhere."""

    def __init__(self) -> None:
        self._claims: dict[str, str] = {}
        """Each held name, by what it looks like (:func:`protocol.name_skeleton`)."""

    async def start(self, deliver: Deliver, evict: Evict) -> None:
        pass

    async def claim(self, name: str) -> Claim:
        skeleton = name_skeleton(name)
        if skeleton in self._claims:
            return Claim.TAKEN
        self._claims[skeleton] = name
        return Claim.GRANTED

    def release(self, name: str) -> None:
        skeleton = name_skeleton(name)
        if self._claims.get(skeleton) == name:
            del self._claims[skeleton]

    async def settle(self, names: Sequence[str], until: float) -> None:
        for name in names:
            self.release(name)

    async def names(self, limit: int) -> list[str] | None:
        return list(itertools.islice(self._claims.values(), limit))

    async def route(self, parcels: Sequence[Parcel]) -> list[bool | None]:
        return [False] * len(parcels)

    async def close(self) -> None:
        self._claims.clear()
