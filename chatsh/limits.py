"""The server's bounds on what clients can make it hold, as plain bookkeeping.

:class:`PendingGate` caps connections that have not logged in, per address and
in all; :class:`LoginQuota` caps the users logged in from one address;
:class:`BacklogBound` caps the bytes queued for every slow reader together. None
does I/O: the server asks them whom to refuse or drop. An address is counted by its
block (:func:`address_block`): one IPv4 address, or the /64 an IPv6 host picks its
addresses from.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Conn = TypeVar("Conn", bound=Hashable)

DEFAULT_MAX_PENDING = 256
DEFAULT_MAX_PENDING_PER_ADDRESS = 32
IPV6_BLOCK = 64
"""The prefix an IPv6 address is counted by: a host holds a whole /64 (RFC 4291)."""
MAX_LOGIN_LINE = 4096
"""Bytes of an unfinished line held for a connection that has not logged in (a login
line has at most 268): past them it is answered BAD-RQST-BODY and closed."""
DEFAULT_MAX_REFUSALS = 8
"""Refused logins (IN-USE, a refused name) one connection may have; the last is
answered, then the connection closes."""
PENDING_GRACE = 2.0
"""Seconds a connection may wait to log in before a newer one can push it out."""
PRESSED_HANDSHAKE_TIMEOUT = 5.0
"""The login deadline once more than half of ``max_pending`` are waiting."""
MIN_PENDING = 4
"""The fewest connections allowed to wait to log in, however few descriptors."""
DEFAULT_MAX_TOTAL_QUEUE = 256 * 1024 * 1024
BACKED_UP = 1024 * 1024
"""Queued bytes from which a connection counts as a slow reader."""


def clients_per_address(max_clients: int) -> int:
    """The default share of one address: three quarters of the users' places, so that
    others always have a quarter, while a class behind one address (a NAT) still fits."""
    return max(1, max_clients - max_clients // 4)


def address_block(address: str) -> str:
    """What ``address`` is counted as: an IPv4 address (also when seen as IPv6-mapped on
    a dual-stack listener), the /64 of an IPv6 one, or itself if it is neither."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])  # (a link-local's zone)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is None:
            return str(ipaddress.IPv6Network((ip, IPV6_BLOCK), strict=False))
        ip = ip.ipv4_mapped
    return str(ip)


class LoginQuota:
    """Users logged in per address block: one address cannot take every user's place.

    Loopback counts like any other address (a proxy or a tunnel in front of the server
    makes every user one address: raise the share to ``max_clients`` there)."""

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self._held: Counter[str] = Counter()

    def take(self, address: str) -> bool:
        """Count a login from ``address`` in, if its block has a place left."""
        block = address_block(address)
        if self._held[block] >= self.per_address:
            return False
        self._held[block] += 1
        return True

    def give_back(self, address: str) -> None:
        """A user from ``address`` (counted in by :meth:`take`) logged out."""
        block = address_block(address)
        self._held[block] -= 1
        if self._held[block] <= 0:
            del self._held[block]

    def __len__(self) -> int:
        """The blocks with a user logged in."""
        return len(self._held)


class PendingGate(Generic[Conn]):
    """Connections not logged in yet: a few per address, a bounded number in all.

    A new connection over its address's share, or over the total, pushes out
    the oldest waiting connection (of that address, or of all) once that one has
    waited ``grace`` seconds: a flood of silent connections is bounded and can
    never keep a new user from logging in, while a burst of real users (a class
    behind one address) logs in before anyone is pushed out.
    """

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING,
                 per_address: int = DEFAULT_MAX_PENDING_PER_ADDRESS,
                 grace: float = PENDING_GRACE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_pending = max_pending
        self.per_address = per_address
        self.grace = grace
        self._clock = clock
        self._waiting: OrderedDict[Conn, tuple[str, float]] = OrderedDict()
        self._by_address: dict[str, list[Conn]] = {}

    def admit(self, conn: Conn, address: str, crowded: bool = False) -> list[Conn]:
        """Count ``conn`` in; the connections to close for it, oldest first. ``crowded``:
        no descriptor is left for one more connection, so the oldest waiting one goes
        however short its wait."""
        address = address_block(address)
        now = self._clock()
        evicted = []
        if crowded and self._waiting:
            evicted.append(next(iter(self._waiting)))
            self.release(evicted[0])
        same = self._by_address.get(address, [])
        while len(same) >= self.per_address and self._waited(same[0], now):
            evicted.append(same[0])
            self.release(same[0])
        while len(self._waiting) >= self.max_pending:
            oldest = next(iter(self._waiting))
            if not self._waited(oldest, now):
                break
            evicted.append(oldest)
            self.release(oldest)
        self._waiting[conn] = (address, now)
        self._by_address.setdefault(address, []).append(conn)
        return evicted

    def _waited(self, conn: Conn, now: float) -> bool:
        return now - self._waiting[conn][1] >= self.grace

    def release(self, conn: Conn) -> None:
        """``conn`` logged in or went away."""
        entry = self._waiting.pop(conn, None)
        if entry is None:
            return
        same = self._by_address[entry[0]]
        same.remove(conn)
        if not same:
            del self._by_address[entry[0]]

    def handshake_timeout(self, normal: float) -> float:
        """The login deadline for a new connection: shorter under pressure."""
        if len(self._waiting) > self.max_pending // 2:
            return min(normal, PRESSED_HANDSHAKE_TIMEOUT)
        return normal

    def __len__(self) -> int:
        return len(self._waiting)


def fitted_pending(max_pending: int, max_clients: int, free: int) -> int:
    """How many connections may wait to log in with ``free`` descriptors left: what is
    asked when users and waiting connections all fit; else what the users leave, but
    never more than half of what is free (so that a new connection can always be
    accepted to push out a silent one), and a quarter when the users alone do not fit."""
    if free >= max_clients + max_pending:
        return max_pending
    left = free - max_clients if free > max_clients else free // 4
    return max(MIN_PENDING, min(max_pending, left, free // 2))


class BacklogBound(Generic[Conn]):
    """The bytes queued for all slow readers together, the slowest dropped first."""

    def __init__(self, queued: Callable[[Conn], int],
                 max_total: int = DEFAULT_MAX_TOTAL_QUEUE) -> None:
        self._queued = queued
        self.max_total = max_total
        self.slow: set[Conn] = set()
        """The connections over :data:`BACKED_UP` at the last look."""

    def note(self, conn: Conn) -> list[Conn]:
        """``conn`` was just written to; the connections to drop to keep the bound."""
        if self._queued(conn) >= BACKED_UP:
            self.slow.add(conn)
        elif not self.slow:
            return []
        sizes = {slow: self._queued(slow) for slow in self.slow}
        self.slow = {slow for slow, size in sizes.items() if size >= BACKED_UP}
        total = sum(sizes[slow] for slow in self.slow)
        dropped = []
        for slow in sorted(self.slow, key=sizes.__getitem__, reverse=True):
            if total <= self.max_total:
                break
            total -= sizes[slow]
            dropped.append(slow)
        self.slow.difference_update(dropped)
        return dropped

    def forget(self, conn: Conn) -> bool:
        """``conn`` ended; whether it was a slow reader at the last look."""
        if conn in self.slow:
            self.slow.discard(conn)
            return True
        return False
