"""A server's logged-in users, in step with the backplane's names.

The one place where a name is taken and given back: a login claims the name
from the backplane before its user is added, a leave removes the user and
releases the name. Deliveries that reach a name while its claim is under way
(another node may route to it as soon as the engine grants it) are held for it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Generic, TypeVar

from .backplane import Backplane, Claim, Parcel
from .names import ECHOBOT, name_skeleton

ECHOBOT_SKELETON = name_skeleton(ECHOBOT)

User = TypeVar("User")


class Refusal(enum.Enum):
    """Why a login did not get its name."""

    FULL = "server full"
    TAKEN = "name in use"
    UNAVAILABLE = "no cluster engine to make the name unique"
    ADDRESS_FULL = "its address has its share of users (--max-clients-per-address)"


class UserRegistry(Generic[User]):
    """This server's users by name; names claimed from and released to ``backplane``."""

    def __init__(self, backplane: Backplane, max_users: int) -> None:
        self.backplane = backplane
        self.max_users = max_users
        self._users: dict[str, User] = {}
        self._arriving: dict[str, list[list[bytes]]] = {}
        """Per name whose claim is under way, what each login of it holds meanwhile."""

    def __len__(self) -> int:
        return len(self._users)

    def __iter__(self) -> Iterator[str]:
        return iter(self._users)

    def get(self, name: str) -> User | None:
        return self._users.get(name)

    @property
    def by_name(self) -> Mapping[str, User]:
        """The users by name, for a loop that looks up many (one call to have it)."""
        return self._users

    @property
    def full(self) -> bool:
        return len(self._users) >= self.max_users

    async def admit(self, name: str, user: User) -> bytes | Refusal:
        """Claim ``name`` and add ``user`` under it: the deliveries held for it meanwhile,
        or why not."""
        if self.full:
            return Refusal.FULL
        held: list[bytes] = []
        self._arriving.setdefault(name, []).append(held)
        try:
            claim = Claim.TAKEN if name_skeleton(name) == ECHOBOT_SKELETON else (
                await self.backplane.claim(name))
        finally:
            others = [waiting for waiting in self._arriving[name] if waiting is not held]
            if others:
                self._arriving[name] = others
            else:
                del self._arriving[name]
        if claim is Claim.TAKEN:
            return Refusal.TAKEN
        if claim is Claim.UNAVAILABLE:
            return Refusal.UNAVAILABLE
        if self.full:  # filled while the claim was made
            self.backplane.release(name)
            return Refusal.FULL
        self._users[name] = user
        return b"".join(held)

    def leave(self, name: str, user: User) -> bool:
        """Remove ``user`` and give its name back; False if the name is not its own."""
        if self._users.get(name) is not user:
            return False
        del self._users[name]
        self.backplane.release(name)
        return True

    def addressed(self, parcels: Sequence[Parcel]) -> dict[User, list[bytes]]:
        """The lines of each parcel, by the user they are for; parcels for a name being
        claimed are held for its login, the rest (users gone) dropped."""
        outbox: dict[User, list[bytes]] = {}
        for parcel in parcels:
            user = self._users.get(parcel.recipient)
            if user is not None:
                outbox.setdefault(user, []).append(parcel.lines)
            else:
                for held in self._arriving.get(parcel.recipient, ()):
                    held.append(parcel.lines)
        return outbox
