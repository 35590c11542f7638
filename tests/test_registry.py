"""The server's users and the backplane's names change together, in one place."""

import asyncio

from chatsh.backplane import Claim, LocalBackplane, Parcel
from chatsh.registry import Refusal, UserRegistry


class SlowClaims(LocalBackplane):
    """Claims that wait for the test to let them through, as a cluster engine's do."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def claim(self, name: str) -> Claim:
        await self.go.wait()
        return await super().claim(name)


def test_a_login_and_a_leave_take_and_give_back_the_name():
    async def scenario() -> None:
        backplane = LocalBackplane()
        users: UserRegistry[object] = UserRegistry(backplane, 2)
        alice = object()
        assert await users.admit("alice", alice) == b""
        assert users.get("alice") is alice and list(users) == ["alice"]
        assert await backplane.names(10) == ["alice"]
        assert await users.admit("Alice", object()) is Refusal.TAKEN
        assert await users.admit("echobot", object()) is Refusal.TAKEN
        assert not users.leave("alice", object())  # not its name: nothing changes
        assert users.leave("alice", alice)
        assert await backplane.names(10) == [] and len(users) == 0
    asyncio.run(scenario())


def test_a_full_server_refuses_before_and_after_the_claim():
    async def scenario() -> None:
        backplane = SlowClaims()
        users: UserRegistry[object] = UserRegistry(backplane, 1)
        first = asyncio.create_task(users.admit("a", object()))
        second = asyncio.create_task(users.admit("b", object()))
        await asyncio.sleep(0)
        backplane.go.set()
        assert await first == b""
        assert await second is Refusal.FULL
        assert await backplane.names(10) == ["a"]  # the name b got was given back
        assert await users.admit("c", object()) is Refusal.FULL
    asyncio.run(scenario())


def test_deliveries_during_racing_claims_of_one_name_reach_the_winner():
    async def scenario() -> None:
        backplane = SlowClaims()
        users: UserRegistry[str] = UserRegistry(backplane, 5)
        winner = asyncio.create_task(users.admit("bob", "winner"))
        await asyncio.sleep(0)
        loser = asyncio.create_task(users.admit("bob", "loser"))
        await asyncio.sleep(0)
        assert users.addressed([Parcel("bob", b"DELIVERY a 1\n")]) == {}
        backplane.go.set()
        await asyncio.sleep(0)  # the winner's claim ends first
        assert await winner == b"DELIVERY a 1\n"
        assert await loser is Refusal.TAKEN
        assert users.addressed([Parcel("bob", b"DELIVERY a 2\n"), Parcel("gone", b"x\n")]) == {
            "winner": [b"DELIVERY a 2\n"]}
    asyncio.run(scenario())


def test_a_delivery_between_two_racing_claims_is_not_lost_when_the_loser_ends_first():
    async def scenario() -> None:
        backplane = SlowClaims()
        users: UserRegistry[str] = UserRegistry(backplane, 5)
        held = Claim.GRANTED
        gate = asyncio.Event()

        async def claim(name: str) -> Claim:
            nonlocal held
            if name == "bob" and held is Claim.GRANTED:
                held = Claim.TAKEN
                await gate.wait()  # the winner's engine reply is slow
                return Claim.GRANTED
            return Claim.TAKEN

        backplane.claim = claim  # type: ignore[method-assign]
        winner = asyncio.create_task(users.admit("bob", "winner"))
        await asyncio.sleep(0)
        assert await users.admit("bob", "loser") is Refusal.TAKEN
        users.addressed([Parcel("bob", b"DELIVERY a 1\n")])  # after the loser gave up
        gate.set()
        assert await winner == b"DELIVERY a 1\n"
    asyncio.run(scenario())
