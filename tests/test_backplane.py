"""The backplane: the in-memory one, the payload records, and the engine's Lua scripts
run directly against a real Valkey."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time

import pytest
import redis
from cluster import wait_for
from conftest import DEADLINE, RawClient
from hypothesis import given
from hypothesis import strategies as st

from chatsh.backplane import Claim, LocalBackplane, Parcel
from chatsh.cluster import scripts
from chatsh.cluster.records import split_records
from chatsh.names import name_skeleton

names = st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zs"],
                              blacklist_characters="!@#$%^&*,"), min_size=1, max_size=8)
lines = st.lists(st.binary(max_size=30).map(lambda b: b"DELIVERY x " + b.replace(b"\n", b"")
                                            + b"\n"), min_size=1, max_size=4)


def encode(records: list[tuple[str, bytes]]) -> bytes:
    """Records as the route script writes them (see chatsh/cluster/scripts.py)."""
    return b"".join(name.encode() + b" %d\n" % len(data) + data for name, data in records)


@given(st.lists(st.tuples(names, lines.map(b"".join)), max_size=5))
def test_records_split_back_into_what_was_routed(records):
    assert split_records(encode(records)) == ([Parcel(*record) for record in records], 0)


def test_a_recipient_that_is_not_utf8_is_shown_replaced_not_raised():
    assert split_records(b"b\xffb 13\nDELIVERY x y\n") == (
        [Parcel("b\ufffdb", b"DELIVERY x y\n")], 0)


GOOD = encode([("ann", b"DELIVERY bo hi\n")])


@pytest.mark.parametrize(("junk", "dropped"), [
    (b"bob x\nDELIVERY", 1),                       # a length that is no number
    (b"no header end", 1),
    (b"bob " + b"9" * 5000 + b"\nDELIVERY x\n", 1),  # a length of 5,000 digits
    (b"bob 99\nDELIVERY x y\n", 1),                # longer than what is left
    (b"alice 7\nIN-USE\n", 1),                     # not a DELIVERY line
    (b"alice 12\nDELIVERY x y", 1),                 # no final newline
    (b"alice 20\nDELIVERY x y\nIN-USE\n", 1),       # a DELIVERY, then something else
    (b" 13\nDELIVERY x y\n", 1),                   # no recipient
])
def test_what_is_not_a_well_formed_record_is_dropped_and_counted(junk, dropped):
    parcels, count = split_records(GOOD + junk + GOOD)
    assert parcels[0] == Parcel("ann", b"DELIVERY bo hi\n") and count == dropped
    assert all(parcel.lines.startswith(b"DELIVERY ") for parcel in parcels)


def test_the_local_backplane_holds_names_by_their_look():
    async def scenario() -> None:
        local = LocalBackplane()
        assert await local.claim("alice") is Claim.GRANTED
        assert await local.claim("ALICE") is Claim.TAKEN
        assert await local.claim("аlice") is Claim.TAKEN  # Cyrillic a
        assert await local.claim("bob") is Claim.GRANTED
        local.release("Alice")  # not the holder's spelling: nothing happens
        assert await local.names(10) == ["alice", "bob"]
        local.release("alice")
        assert await local.names(10) == ["bob"]
        assert await local.claim("carol") is Claim.GRANTED
        assert await local.names(1) == ["bob"]  # at most the names asked for
        assert await local.route([Parcel("bob", b"DELIVERY x y\n")]) == [False]
    asyncio.run(scenario())


KEYS = ("{chatsh:t}:claims", "{chatsh:t}:nodes")
PREFIX = "{chatsh:t}:"


@pytest.fixture
def engine_client(engine):
    client = redis.Redis(port=engine.port)
    yield client
    client.close()


def run(client, script: str, *args):
    return client.eval(script, 2, *KEYS, *args)


def register(client, node: str, incarnation: str, lease_ms: int, limit: int = 1 << 20):
    """The node's inbox epoch, or 0 (another live process has the name)."""
    found = run(client, scripts.REGISTER, node, incarnation, lease_ms, 2 * lease_ms, PREFIX,
                f"e-{incarnation}-{time.monotonic_ns()}", limit)
    return found[0] if found else 0


def renew(client, node: str, incarnation: str, lease_ms: int, epoch) -> int:
    """1 if renewed (the script gives the engine's time), else 0."""
    return int(run(client, scripts.RENEW, node, incarnation, lease_ms, 2 * lease_ms, PREFIX,
                   epoch) > 0)


def claim(client, node: str, name: str, reclaim: bool = False) -> int:
    return run(client, scripts.CLAIM, 0, node, f"i-{node}", int(reclaim), name_skeleton(name),
               name)[0]


def test_claims_follow_the_leases(engine_client):
    c = engine_client
    assert register(c, "a", "i-a", 60_000)
    assert register(c, "a", "other", 60_000) == 0  # a live node has the name
    b_inbox = register(c, "b", "i-b", 200)
    assert b_inbox
    assert claim(c, "c", "zed") == -1  # no lease: fenced
    assert claim(c, "a", "alice") == 1
    assert claim(c, "b", "ALICE") == 0
    assert claim(c, "a", "alice") == 0  # a second alice on the same node
    assert claim(c, "a", "alice", reclaim=True) == 1
    assert claim(c, "b", "bob") == 1
    assert sorted(run(c, scripts.NAMES, 10)) == [b"alice", b"bob"]
    assert len(run(c, scripts.NAMES, 1)) == 1  # at most the names asked for
    # b's 200 ms lease runs out on the engine's clock
    wait_for(lambda: sorted(run(c, scripts.NAMES, 10)) == [b"alice"], "b's names to go")
    assert renew(c, "b", "i-b", 200, b_inbox) == 0
    assert claim(c, "a", "bob") == 1  # a dead node's name is free


def test_a_reclaim_drops_what_left_meanwhile(engine_client):
    c = engine_client
    register(c, "a", "i-a", 60_000)
    for name in ("ann", "amy"):
        assert claim(c, "a", name) == 1
    args = ["a", "i-a", 1, name_skeleton("ann"), "ann"]
    assert run(c, scripts.CLAIM, 0, *args) == [1]
    assert run(c, scripts.NAMES, 10) == [b"ann"]
    run(c, scripts.RELEASE, name_skeleton("ann"), "b ann")  # not the holder
    assert run(c, scripts.NAMES, 10) == [b"ann"]
    run(c, scripts.LEAVE, "a", "i-a", PREFIX)
    assert run(c, scripts.NAMES, 10) == [] and c.hgetall(KEYS[1]) == {}
    assert c.keys(PREFIX + "inbox*") == []  # the inbox goes with the node


def route(client, *pairs: tuple[str, bytes], deadline: int = 0, route_id: str = "",
          kept_ms: int = 60_000) -> list[int]:
    return run(client, scripts.ROUTE, deadline, "NUMSUB", PREFIX,
               route_id or f"r{time.monotonic_ns()}", kept_ms, *(
                   arg for name, lines in pairs for arg in (name_skeleton(name), name, lines)))


def outcome(client, route_id: str, deadline: int, epoch, fence_ms: int = 60_000,
            node: str = "a") -> bytes | None:
    """What the route did, asked by ``node`` whose inbox had ``epoch`` when it went."""
    return run(client, scripts.OUTCOME, PREFIX, route_id, deadline, fence_ms,
               f"{PREFIX}inbox:{node}", epoch)


def inbox(client, node: str, epoch) -> list[bytes]:
    """The payloads waiting in ``node``'s inbox."""
    stream = f"{PREFIX}inbox:{node}/{epoch.decode()}"
    return [fields[b"d"] for _, fields in client.xrange(stream)]


@pytest.fixture
def listening(engine_client):
    """``listening(node)``: subscribe where routes look for the node's listener."""
    subscriptions = []

    def listen(node: str) -> None:
        subscription = engine_client.pubsub()
        subscription.subscribe(f"{PREFIX}reader:{node}")
        assert subscription.get_message(timeout=5)["type"] == "subscribe"
        subscriptions.append(subscription)
    yield listen
    for subscription in subscriptions:
        subscription.close()


def test_a_route_stores_one_entry_per_node_that_listens(engine_client, listening):
    c = engine_client
    a_inbox = register(c, "a", "i-a", 60_000)
    b_inbox = register(c, "b", "i-b", 60_000)
    claim(c, "a", "ann")
    claim(c, "b", "bob")
    listening("a")
    sent = route(c, ("ann", b"DELIVERY x 1\n"), ("bob", b"DELIVERY x 2\n"),
                 ("nobody", b"DELIVERY x 3\n"), ("ann", b"DELIVERY x 4\n"))
    assert sent == [1, 0, 0, 1]  # nobody listens for b
    (entry,) = inbox(c, "a", a_inbox)
    assert split_records(entry) == ([Parcel("ann", b"DELIVERY x 1\n"),
                                     Parcel("ann", b"DELIVERY x 4\n")], 0)
    assert inbox(c, "b", b_inbox) == []


def test_a_claim_or_a_route_that_comes_after_its_deadline_does_nothing(
        engine_client, listening):
    c = engine_client
    epoch = register(c, "a", "i-a", 60_000)
    listening("a")
    (seconds, micros) = c.time()
    now_ms = seconds * 1000 + micros // 1000
    past, future = now_ms - 1, now_ms + 60_000
    skeleton = name_skeleton("ann")
    assert run(c, scripts.CLAIM, past, "a", "i-a", 0, skeleton, "ann") == [-1]
    assert c.hget(KEYS[0], skeleton) is None
    assert run(c, scripts.CLAIM, future, "a", "i-a", 0, skeleton, "ann") == [1]
    assert route(c, ("ann", b"DELIVERY x late\n"), deadline=past) == [0]
    assert route(c, ("ann", b"DELIVERY x on time\n"), deadline=future) == [1]
    assert [split_records(entry)[0] for entry in inbox(c, "a", epoch)] == [
        [Parcel("ann", b"DELIVERY x on time\n")]]


def test_what_a_route_did_is_told_to_whoever_asks_and_asking_fences_it(
        engine_client, listening):
    """A route that stored something keeps its answer under its id for as long as asked;
    asking about a route that has not run fences it (run later, it does nothing); one
    past its deadline never acts, so asking writes nothing."""
    c = engine_client
    epoch = register(c, "a", "i-a", 60_000)
    claim(c, "a", "ann")
    listening("a")
    (seconds, micros) = c.time()
    now_ms = seconds * 1000 + micros // 1000
    future = now_ms + 60_000
    assert route(c, ("ann", b"DELIVERY x 1\n"), ("nobody", b"DELIVERY x 2\n"),
                 deadline=future, route_id="stored", kept_ms=45_000) == [1, 0]
    assert outcome(c, "stored", future, epoch) == b"10"
    assert outcome(c, "stored", future, b"another") == b"10"  # it tells, whatever else
    assert 40_000 < c.pttl(f"{PREFIX}routed:stored") <= 45_000
    assert route(c, ("nobody", b"DELIVERY x 3\n"), deadline=future, route_id="none") == [0]
    assert c.exists(f"{PREFIX}routed:none") == 0  # nothing to keep for a refusal
    assert outcome(c, "held", future, epoch) == b""
    assert 59_000 < c.pttl(f"{PREFIX}routed:held") <= 61_000  # until its deadline, and 1 s
    assert route(c, ("ann", b"DELIVERY x 4\n"), deadline=future, route_id="held") == [0]
    assert outcome(c, "held", future, epoch) == b""
    assert outcome(c, "late", now_ms - 1, epoch) == b""
    assert c.exists(f"{PREFIX}routed:late") == 0
    c.hset(f"{PREFIX}routed:junk", "x", "y")
    assert outcome(c, "junk", future, epoch) == b""
    # the asking node's inbox is not the one it had: the engine lost its data, and with it
    # what the route did
    assert outcome(c, "gone", future, b"an epoch before") == b"?"
    assert outcome(c, "gone", future, epoch, node="nobody") == b"?"
    assert c.exists(f"{PREFIX}routed:gone") == 0
    assert [split_records(entry)[0] for entry in inbox(c, "a", epoch)] == [
        [Parcel("ann", b"DELIVERY x 1\n")]]


def test_asking_what_a_route_did_waits_while_the_engine_refuses_writes(engine_client):
    """Under the engine's maxmemory a route stores nothing and a fence cannot be written:
    until the route's deadline has passed, the answer is 'not yet', never a guess."""
    c = engine_client
    epoch = register(c, "a", "i-a", 60_000)
    (seconds, micros) = c.time()
    now_ms = seconds * 1000 + micros // 1000
    c.config_set("maxmemory", 1)
    try:
        assert outcome(c, "under", now_ms + 60_000, epoch) is None
        assert outcome(c, "under", now_ms - 1, epoch) == b""
    finally:
        c.config_set("maxmemory", 0)


def trim(client, node: str, epoch, keep_from: bytes, read: int) -> int:
    return run(client, scripts.TRIM, PREFIX, node, epoch, keep_from, read)


def test_an_inbox_takes_up_to_its_limit_and_room_comes_back_with_the_trims(
        engine_client, listening):
    """What waits for a node is bounded: a route that would pass the limit is refused
    (never trimmed unread, as MAXLEN would), and what the node reads and trims makes room
    again; a trim told twice counts once."""
    c = engine_client
    epoch = register(c, "a", "i-a", 60_000, limit=100)
    claim(c, "a", "ann")
    listening("a")
    line = b"DELIVERY x " + b"y" * 27 + b"\n"  # 39 bytes, 46 with its record header
    assert [route(c, ("ann", line)) for _ in range(3)] == [[1], [1], [0]]
    first, second = (entry_id for entry_id, _ in c.xrange(f"{PREFIX}inbox:a/{epoch.decode()}"))
    after_first = b"%s-%d" % (first.split(b"-")[0], int(first.split(b"-")[1]) + 1)
    for _ in range(2):
        assert trim(c, "a", epoch, after_first, 46) == 1
    assert route(c, ("ann", line)) == [1]
    assert route(c, ("ann", line)) == [0]
    assert len(inbox(c, "a", epoch)) == 2 and trim(c, "a", b"other", b"0-1", 999) == 0


@pytest.mark.parametrize("field, junk", [
    ("added", "abc"), ("read", "-"), ("limit", "x"), ("epoch", ""),
    # numbers Lua takes that no count is: a route stored the message, then failed on the
    # count (HINCRBY), so the sender was told BAD-DEST-USER and the message was delivered,
    # and the sending node took the engine for out of reach at every send
    ("added", "nan"), ("added", "1.5"), ("read", "0x10"),
    # counts that refused every route for good
    ("added", "1e300"), ("added", str(1 << 40)), ("limit", "0"), ("limit", "-1e300")])
def test_junk_in_an_inbox_makes_the_node_register_a_new_one(engine_client, listening,
                                                             field, junk):
    """Anything can write to the engine: an inbox whose counts are no numbers would refuse
    every route to the node for good; the heartbeat sees it and the node gets a new one."""
    c = engine_client
    epoch = register(c, "a", "i-a", 60_000)
    claim(c, "a", "ann")
    listening("a")
    c.hset(f"{PREFIX}inbox:a", field, junk)
    assert route(c, ("ann", b"DELIVERY x 1\n")) == [0]
    assert inbox(c, "a", epoch) == []
    assert renew(c, "a", "i-a", 60_000, epoch) == 0
    again = register(c, "a", "i-a", 60_000)
    assert again != epoch
    assert route(c, ("ann", b"DELIVERY x 2\n")) == [1]


@pytest.mark.parametrize("key", ["inbox:a", "inbox:a/{epoch}", "claims", "nodes"])
def test_a_key_of_another_kind_counts_as_absent_and_goes(engine_client, listening, key):
    """A node's inbox, its stream, the claims or the leases made a string: every script
    that met it failed (WRONGTYPE) for good, and the nodes took the engine for out of
    reach and back every 0.2 s, two log lines each time, until someone deleted the key.
    Now a route is refused, and the heartbeat (or any script) makes the key anew."""
    c = engine_client
    epoch = register(c, "a", "i-a", 60_000)
    assert claim(c, "a", "ann") == 1
    listening("a")
    c.delete(PREFIX + key.format(epoch=epoch.decode()))
    c.set(PREFIX + key.format(epoch=epoch.decode()), "junk")
    assert route(c, ("ann", b"DELIVERY x 1\n")) == [0]
    assert trim(c, "a", epoch, b"0-1", 0) in (0, 1)
    if renew(c, "a", "i-a", 60_000, epoch) == 0:
        assert register(c, "a", "i-a", 60_000)
    claim(c, "a", "ann", reclaim=True)
    assert route(c, ("ann", b"DELIVERY x 2\n")) == [1]
    assert run(c, scripts.NAMES, 10) == [b"ann"]


def test_a_route_refused_by_the_engines_memory_limit_is_a_refusal(engine_client, listening):
    c = engine_client
    epoch = register(c, "a", "i-a", 60_000, limit=1 << 30)
    claim(c, "a", "ann")
    listening("a")
    c.config_set("maxmemory", 1)
    try:
        assert route(c, ("ann", b"DELIVERY x " + b"y" * 4096 + b"\n")) == [0]
    finally:
        c.config_set("maxmemory", 0)
    assert inbox(c, "a", epoch) == []
    assert route(c, ("ann", b"DELIVERY x y\n")) == [1]


def test_an_inbox_lives_while_its_node_renews_it_and_a_new_process_gets_a_new_one(
        engine_client, listening):
    c = engine_client
    epoch = register(c, "a", "i-a", 300)
    claim(c, "a", "ann")
    listening("a")
    assert route(c, ("ann", b"DELIVERY x 1\n")) == [1]
    assert register(c, "a", "i-a", 300) == epoch  # the same process keeps its inbox
    assert renew(c, "a", "i-a", 300, epoch) == 1
    wait_for(lambda: not c.exists(f"{PREFIX}inbox:a/{epoch.decode()}"),
             "the inbox of a node that stopped renewing to go")
    assert route(c, ("ann", b"DELIVERY x 2\n")) == [0]
    again = register(c, "a", "i-a2", 60_000)  # a new process under the same node name
    assert again != epoch and inbox(c, "a", again) == []
    assert run(c, scripts.CLAIM, 0, "a", "i-a2", 0, name_skeleton("ann"), "ann") == [1]
    assert route(c, ("ann", b"DELIVERY x 3\n")) == [1]
    c.delete(f"{PREFIX}inbox:a/{again.decode()}")  # the stream lost: the heartbeat sees it
    assert renew(c, "a", "i-a2", 60_000, again) == 0
    assert route(c, ("ann", b"DELIVERY x 4\n")) == [0]  # never a stream nobody reads


class RemoteNodes:
    """A backplane that plays the other nodes: names held elsewhere, routes recorded."""

    def __init__(self, remote: set[str], reachable: bool = True) -> None:
        self.remote = remote
        self.reachable = reachable
        self.routed: list[list[tuple[str, bytes]]] = []
        self.local = LocalBackplane()
        self.claims_open = True
        """False: claims wait until it is True again (a slow engine)."""
        self.claiming: list[str] = []
        self.released: list[str] = []
        self.untold: set[str] = set()
        """Recipients whose routes' fate the engine never tells."""

    async def start(self, deliver, evict) -> None:
        self.deliver, self.evict = deliver, evict

    async def claim(self, name: str) -> Claim:
        self.claiming.append(name)
        while not self.claims_open:
            await asyncio.sleep(0.005)
        if not self.reachable:
            return Claim.UNAVAILABLE
        if name_skeleton(name) in {name_skeleton(other) for other in self.remote}:
            return Claim.TAKEN
        return await self.local.claim(name)

    def release(self, name: str) -> None:
        self.released.append(name)
        self.local.release(name)

    async def names(self, limit: int) -> list[str] | None:
        return [*await self.local.names(limit), *sorted(self.remote)][:limit] if (
            self.reachable) else None

    async def route(self, parcels):
        self.routed.append([(parcel.recipient, parcel.lines) for parcel in parcels])
        return [None if parcel.recipient in self.untold else parcel.recipient in self.remote
                for parcel in parcels]

    async def close(self) -> None:
        pass


@pytest.fixture
def node(server_factory):
    """An in-process server whose backplane is ``RemoteNodes``; ``node(...)`` makes it."""
    def make(remote: set[str], reachable: bool = True, max_clients: int = 64, **config):
        from chatsh.embedded import EmbeddedServer
        from chatsh.server import ServerConfig

        backplane = RemoteNodes(remote, reachable)
        server = EmbeddedServer(ServerConfig(max_clients=max_clients, **config),
                                backplane=backplane)
        log: list[str] = []
        server._server.log = log.append
        made.append(server.start())
        return server, backplane, log
    made: list = []
    yield make
    for server in made:
        server.stop()


def test_sends_beyond_the_node_go_in_one_route_grouped_by_recipient(node):
    server, backplane, _ = node({"rita", "ron"})
    ann, bob = RawClient(server.port), RawClient(server.port)
    assert ann.login("ann") == b"HELLO ann" and bob.login("bob") == b"HELLO bob"
    ann.write(b"SEND rita one\nSEND bob local\nSEND nobody lost\nSEND ron hi\nSEND rita two\n")
    replies = [ann.read_line() for _ in range(5)]
    assert replies == [b"SEND-OK", b"SEND-OK", b"BAD-DEST-USER", b"SEND-OK", b"SEND-OK"]
    assert bob.read_line() == b"DELIVERY ann local"
    assert backplane.routed == [[("rita", b"DELIVERY ann one\nDELIVERY ann two\n"),
                                 ("nobody", b"DELIVERY ann lost\n"),
                                 ("ron", b"DELIVERY ann hi\n")]]


def test_a_send_whose_fate_is_unknown_gets_no_reply_and_its_connection_ends(node):
    """The engine never told what a route did (it stayed out of reach): neither reply would
    be true, so the replies before it go out and the connection ends, as when it is lost."""
    server, backplane, log = node({"rita", "ron"})
    backplane.untold = {"ron"}
    ann = RawClient(server.port)
    assert ann.login("ann") == b"HELLO ann"
    ann.write(b"SEND rita one\nSEND echobot two\nSEND ron three\nSEND rita four\nLIST\n")
    assert [ann.read_line() for _ in range(3)] == [b"SEND-OK", b"SEND-OK",
                                                   b"DELIVERY echobot two"]
    assert ann.closed()
    assert any(line.startswith("closed 127.0.0.1:") and line.endswith(
        ": the cluster engine never told whether a SEND of it was stored") for line in log), log


def test_list_names_every_node_and_only_this_one_when_the_engine_is_away(node):
    server, backplane, _ = node({"rita"})
    ann = RawClient(server.port)
    assert ann.login("ann") == b"HELLO ann"
    ann.write(b"LIST\nSEND echobot x\n")
    assert [ann.read_line() for _ in range(3)] == [
        b"LIST-OK echobot,ann,rita", b"SEND-OK", b"DELIVERY echobot x"]
    backplane.reachable = False
    ann.write(b"LIST\n")
    assert ann.read_line() == b"LIST-OK echobot,ann"


def test_a_name_held_elsewhere_is_in_use_and_no_engine_means_busy(node):
    server, _, _ = node({"rita"})
    assert RawClient(server.port).login("RITA") == b"IN-USE"
    away, _, log = node(set(), reachable=False)
    refused = RawClient(away.port)
    assert refused.login("ann") == b"BUSY"
    assert refused.closed()
    assert any(line.startswith("refused ann from ") and line.endswith(
        ": no cluster engine to make the name unique") for line in log), log


def test_deliveries_from_other_nodes_reach_their_users(node):
    server, backplane, _ = node(set())
    ann = RawClient(server.port)
    assert ann.login("ann") == b"HELLO ann"
    payload = encode([("ann", b"DELIVERY rita one\nDELIVERY rita 2\n"),
                      ("gone", b"DELIVERY rita x\n"), ("ann", b"DELIVERY ron z\n")])
    server._loop.call_soon_threadsafe(backplane.deliver, split_records(payload)[0])
    assert [ann.read_line() for _ in range(3)] == [
        b"DELIVERY rita one", b"DELIVERY rita 2", b"DELIVERY ron z"]


def test_a_user_whose_name_another_node_took_is_dropped(node):
    server, backplane, log = node(set())
    ann, bob = RawClient(server.port), RawClient(server.port)
    assert ann.login("ann") == b"HELLO ann" and bob.login("bob") == b"HELLO bob"
    server._loop.call_soon_threadsafe(backplane.evict, "ann")
    server._loop.call_soon_threadsafe(backplane.evict, "nobody")
    assert ann.closed()
    assert "dropped ann: another node holds the name now" in log
    bob.write(b"SEND echobot still\n")
    assert bob.read_line() == b"SEND-OK"


@pytest.mark.parametrize("reads", [True, False])
def test_an_evicted_user_gets_what_was_passed_on_for_him_if_he_reads_in_time(
        node, monkeypatch, reads):
    """What was passed on for a user before his name went to another node is written
    before his connection closes, for as long as he reads it; one who does not read
    within EVICTION_LINGER is cut off (his connection is aborted, the rest dropped)."""
    import chatsh.server

    monkeypatch.setattr(chatsh.server, "EVICTION_LINGER", 1.0)
    server, backplane, log = node(set())
    ann = RawClient(server.port)
    assert ann.login("ann") == b"HELLO ann"
    lines = [b"DELIVERY rita %d " % number + b"x" * (1 << 20) for number in range(16)]

    def pass_on_and_evict() -> None:
        backplane.deliver([Parcel("ann", b"".join(line + b"\n" for line in lines))])
        backplane.evict("ann")

    server._loop.call_soon_threadsafe(pass_on_and_evict)
    wait_for(lambda: "dropped ann: another node holds the name now" in log, "the eviction")
    if not reads:
        time.sleep(2.0)  # past the linger
    arrived = []
    try:
        while (line := ann.read_line()) is not None:
            arrived.append(line)
    except ConnectionResetError:
        pass
    assert (arrived == lines) is reads, len(arrived)


def test_a_node_that_fills_up_during_a_claim_gives_the_name_back(node):
    server, backplane, log = node(set(), max_clients=1)
    backplane.claims_open = False
    first, second = RawClient(server.port), RawClient(server.port, source="127.0.0.2")
    first.write(b"HELLO-FROM ann\n")
    second.write(b"HELLO-FROM bob\n")
    wait_for(lambda: len(backplane.claiming) == 2, "both claims to be under way")
    backplane.claims_open = True
    answers = {first.read_line(), second.read_line()}
    assert answers in ({b"HELLO ann", b"BUSY"}, {b"HELLO bob", b"BUSY"})
    loser = "bob" if b"HELLO ann" in answers else "ann"
    wait_for(lambda: backplane.released == [loser], f"{loser}'s name to be given back")
    assert any(line.startswith(f"refused {loser} from ") and line.endswith(": server full")
               for line in log), log


@pytest.fixture
def cluster_node(engine):
    """In-process nodes on the real engine, whose backplanes a test can reach into."""
    from chatsh.cluster.backplane import RedisBackplane
    from chatsh.cluster.config import ClusterConfig
    from chatsh.embedded import EmbeddedServer
    from chatsh.server import ServerConfig

    made: list = []

    def make(name: str, lease: float = 1.5, groups: int = 1, **server_options):
        log: list[str] = []
        backplane = RedisBackplane(ClusterConfig(f"redis://127.0.0.1:{engine.port}/0", name,
                                                 lease=lease, groups=groups), log.append)
        server = EmbeddedServer(ServerConfig(**server_options), backplane=backplane)
        server._server.log = log.append
        made.append(server.start())
        return server, backplane, log
    yield make
    for server in made:
        server.stop()


def test_a_rejoin_listens_again_when_the_engine_lost_the_subscription(engine, cluster_node):
    """The listener gone without a word (a half-open link): after the lease lapses the
    node registers again, sees that nobody listens on its channel, and listens again."""
    here, _, _ = cluster_node("here")
    there, there_plane, there_log = cluster_node("there")
    ann, bob = RawClient(here.port), RawClient(there.port)
    assert ann.login("ann") == b"HELLO ann" and bob.login("bob") == b"HELLO bob"
    there._loop.call_soon_threadsafe(there_plane._lives[there_plane._groups[0]].listener.stop)
    wait_for(lambda: engine.command("PUBSUB", "NUMSUB", there_plane._groups[0].channel).endswith(
        b":0\r\n"), "the subscription to go")
    engine.command("HDEL", there_plane._groups[0].keys[1], "there")  # the lease lapses
    wait_for(lambda: any("registering and claiming again" in line for line in there_log),
             "the node to register again")

    def crosses() -> bool:
        ann.write(b"SEND bob are you there\n")
        return ann.read_line() == b"SEND-OK"

    wait_for(crosses, "bob's node to listen again")
    assert bob.read_line() == b"DELIVERY ann are you there"


def test_junk_in_a_nodes_inbox_or_on_its_channel_is_dropped_said_once_and_the_node_reads_on(
        engine, cluster_node):
    here, _, _ = cluster_node("here")
    there, there_plane, there_log = cluster_node("there")
    ann, bob = RawClient(here.port), RawClient(there.port)
    assert ann.login("ann") == b"HELLO ann" and bob.login("bob") == b"HELLO bob"
    group = there_plane._groups[0]
    inbox = there_plane._lives[group].inbox
    client = redis.Redis(port=engine.port)
    try:
        assert client.publish(group.channel, b"bob 13\nDELIVERY x y\n") == 1  # ignored
        for junk in ({"d": b"bob " + b"9" * 5000 + b"\nDELIVERY x\n"}, {"d": b"bob 7\nIN-USE\n"},
                     {"d": b"bob 12\nDELIVERY x y"}, {"d": "not even bytes ✓"},
                     {"other": b"field"}):
            client.xadd(f"{group.inbox}/{inbox.epoch}", junk)
    finally:
        client.close()
    ann.write(b"SEND bob still there\n")
    assert ann.read_line() == b"SEND-OK"
    assert bob.read_line() == b"DELIVERY ann still there"
    assert sum("malformed record" in line for line in there_log) == 1, there_log


def test_a_malformed_entry_in_the_engine_counts_as_absent_and_goes(engine_client):
    """One bad claim or lease used to make every script fail, for good."""
    c = engine_client
    a_inbox = register(c, "a", "i-a", 60_000)
    assert claim(c, "a", "ann") == 1
    c.hset(KEYS[0], "bad", "nospace")   # a claim value without "<node> <name>"
    c.hset(KEYS[0], "empty", "")
    c.hset(KEYS[1], "b", "i-b soon")     # a lease that is not a number
    c.hset(KEYS[1], "c", "junk")
    assert run(c, scripts.NAMES, 10) == [b"ann"]
    assert claim(c, "a", "bob") == 1
    assert renew(c, "a", "i-a", 60_000, a_inbox) == 1
    assert renew(c, "b", "i-b", 60_000, b"x") == 0  # its bad lease counts as gone
    assert register(c, "c", "i-c", 60_000)
    assert run(c, scripts.ROUTE, 0, "NUMSUB", PREFIX, name_skeleton("ann"), "ann",
               b"DELIVERY x 1\n", "bad", "x", b"DELIVERY x 2\n") == [0, 0]  # nobody listens
    assert c.hget(KEYS[0], "bad") is None and c.hget(KEYS[0], "empty") is None
    assert c.hget(KEYS[1], "c").startswith(b"i-c ")


def test_a_node_started_again_under_its_name_inherits_none_of_the_dead_ones_claims(
        engine_client):
    c = engine_client

    def claim_as(incarnation: str, name: str) -> int:
        return run(c, scripts.CLAIM, 0, "a", incarnation, 0, name_skeleton(name), name)[0]

    assert register(c, "a", "first-life", 200)
    assert claim_as("first-life", "ann") == 1
    assert register(c, "a", "second-life", 60_000) == 0  # the lease still runs
    wait_for(lambda: register(c, "a", "second-life", 60_000) != 0,
             "the dead process's lease to run out")  # (no LIST meanwhile to clean up)
    assert c.hget(KEYS[0], name_skeleton("ann")) is None  # not revived
    assert run(c, scripts.NAMES, 10) == []
    assert claim_as("second-life", "zoe") == 1
    assert register(c, "a", "second-life", 60_000)  # the same process
    assert run(c, scripts.NAMES, 10) == [b"zoe"]  # registering again keeps its own claims


def test_a_release_lost_on_its_way_is_made_good_at_the_next_heartbeat(engine, cluster_node):
    """The engine holds for a node what the node's users are, whatever got lost."""
    here, _, _ = cluster_node("here")
    there, there_plane, _ = cluster_node("there")
    client = redis.Redis(port=engine.port)
    try:  # as if "ghost" logged out of there and its release never reached the engine
        client.hset(there_plane._groups[0].keys[0], name_skeleton("ghost"), "there ghost")
    finally:
        client.close()
    attempts: list[bytes | None] = []

    def free() -> bool:
        attempts.append(RawClient(here.port).login("ghost"))
        return attempts[-1] == b"HELLO ghost"

    wait_for(free, "the lost release to be made good")
    assert attempts[0] == b"IN-USE"  # it was held until the heartbeat


def test_a_delivery_that_comes_while_the_claim_is_under_way_follows_the_hello(node):
    """The engine grants the name and a route reaches this node before it has added the
    user: the delivery used to be dropped after its sender had SEND-OK."""
    server, backplane, _ = node(set())
    backplane.claims_open = False
    ann = RawClient(server.port)
    ann.write(b"HELLO-FROM ann\n")
    wait_for(lambda: backplane.claiming == ["ann"], "the claim to be under way")
    server._loop.call_soon_threadsafe(backplane.deliver, [Parcel("ann", b"DELIVERY rita early\n")])
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), server._loop).result(5)  # it landed
    backplane.claims_open = True
    assert ann.read_line() == b"HELLO ann"
    assert ann.read_line() == b"DELIVERY rita early"


def test_the_lease_is_renewed_while_the_command_queue_is_stuck(engine, cluster_node):
    """A big route holds the queue of claims and routes for seconds: the heartbeat has
    a connection of its own, so the lease never lapses because of it."""
    there, plane, log = cluster_node("there", lease=1.0)
    stuck = asyncio.Event()
    run_calls = plane._groups[0].calls._run

    async def hold(entries) -> None:
        await stuck.wait()

    def on_loop(call):
        return asyncio.run_coroutine_threadsafe(call(), there._loop).result(5)

    async def stick() -> None:
        plane._groups[0].calls._run = hold
        plane._groups[0].calls.submit(scripts.NAMES, 10)  # a call that never gets through

    async def holds() -> bool:
        return plane._groups[0].holds_lease(asyncio.get_running_loop().time(), 1.0)

    def renewed_at() -> float:
        return on_loop(lambda: asyncio.sleep(0, plane._groups[0].renewed_at))

    on_loop(stick)
    first = renewed_at()
    wait_for(lambda: renewed_at() > first + 2.0,
             "the lease to be renewed for two seconds", timeout=10)
    assert on_loop(holds)
    assert not any("out of reach" in line for line in log), log

    async def unstick() -> None:
        plane._groups[0].calls._run = run_calls
        stuck.set()

    on_loop(unstick)


class SlowEngine:
    """A client whose pipelines take ``seconds`` to answer every call with 1."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def execute_command(self, *args: object) -> object:
        return [1_700_000_000, 0] if args[0] == "TIME" else None  # or SCRIPT LOAD

    def pipeline(self, transaction: bool):
        engine, calls = self, []

        class Pipeline:
            def execute_command(self, *args) -> None:
                calls.append(args)  # EVALSHA, sha, 2, 2 keys, deadline, PUBSUB, prefix, id,
                # ms its answer is kept, triples

            async def execute(self, raise_on_error: bool):
                await asyncio.sleep(engine.seconds)
                return [[1] * ((len(args) - 10) // 3) for args in calls]
        return Pipeline()


def test_a_call_deadline_grows_with_what_it_carries(monkeypatch):
    """A big route may take the engine longer than a small call's deadline: it is given
    time in proportion to its bytes, so its reply tells what happened; a small call
    that takes as long fails at its deadline."""
    from chatsh.cluster import calls

    monkeypatch.setattr(calls, "BASE_DEADLINE", 0.1)
    monkeypatch.setattr(calls, "ENGINE_RATE", 8 << 20)

    async def scenario() -> tuple[object, object]:
        queue = calls.ScriptCalls(SlowEngine(0.3), ["k1", "k2"], "c:")
        runner = asyncio.create_task(queue.run_forever())
        try:
            big = await queue.route(["bob", "bob", b"x" * (4 << 20)])  # 0.1 s + 0.5 s
            small = await asyncio.gather(queue.route(["bob", "bob", b"x"]),
                                         return_exceptions=True)
        finally:
            queue.stop()
            runner.cancel()
        return big, small[0]

    big, small = asyncio.run(scenario())
    assert big == [1]
    assert isinstance(small, calls.Unanswered) and isinstance(small.cause, TimeoutError)


class RecordingEngine:
    """A client that answers ``TIME`` with ``engine_ms`` and every route with 1, keeping
    the routes' arguments."""

    def __init__(self, engine_ms: int) -> None:
        self.engine_ms = engine_ms
        self.routes: list[tuple[object, ...]] = []

    async def execute_command(self, *args: object) -> object:
        if args[0] == "TIME":
            return [self.engine_ms // 1000, self.engine_ms % 1000 * 1000]
        return None  # SCRIPT LOAD

    def pipeline(self, transaction: bool):
        engine = self

        class Pipeline:
            def execute_command(self, *args) -> None:
                engine.routes.append(args)  # EVALSHA, sha, 2, 2 keys, deadline, ...

            async def execute(self, raise_on_error: bool):
                return [[1] * ((len(args) - 10) // 3) for args in engine.routes]
        return Pipeline()


def test_a_route_sent_while_the_engine_clock_is_unknown_still_carries_its_deadline():
    """The clock estimate is forgotten when the engine is taken for out of reach (it may
    be another engine next); a route sent then went with deadline 0, none at all, so an
    engine that ran it late delivered what its sender had been told was refused. The
    engine's clock is asked first: the deadline is on it, less the margin."""
    from chatsh.cluster import calls

    engine_ms = 1_700_000_000_000

    async def scenario() -> tuple[float, list[tuple[object, ...]]]:
        engine = RecordingEngine(engine_ms)
        queue = calls.ScriptCalls(engine, ["k1", "k2"], "c:")
        queue.clock.observe(5, 0.0)
        queue.clock.reset()
        runner = asyncio.create_task(queue.run_forever())
        try:
            made = asyncio.get_running_loop().time()
            assert await queue.route(["bob", "bob", b"x"]) == [1]
        finally:
            queue.stop()
            runner.cancel()
        return made, engine.routes

    made, routes = asyncio.run(scenario())
    (route,) = routes
    allowed = (calls.BASE_DEADLINE - calls.ENGINE_MARGIN) * 1000
    assert engine_ms < int(route[5]) <= engine_ms + allowed + 1, route


class SlowLink:
    """A TCP relay to the engine whose replies come late in proportion to what was sent
    before them: an engine that takes a second per ``rate`` bytes it is given, as one
    busy with a big route does, counted from the first of those bytes (the time they
    take to pass, however loaded the machine, is part of it, not added to it); small
    calls (the heartbeat) are not held up."""

    def __init__(self, engine_port: int, rate: float) -> None:
        self.rate = rate
        self.engine_port = engine_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.engine_port))
            owed = [0.0, 0.0]  # seconds of "work" the engine owes this connection, and
            # since when it is owed
            threading.Thread(target=self._pipe, args=(client, upstream, owed, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, owed, False),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, owed: list[float],
              request: bool) -> None:
        try:
            while data := source.recv(1 << 20):
                if request:
                    if not owed[0]:
                        owed[1] = time.monotonic()
                    owed[0] += len(data) / self.rate
                elif owed[0] > 0.05:
                    time.sleep(max(0.0, owed[1] + owed[0] - time.monotonic()))
                    owed[0] = 0.0
                target.sendall(data)
        except OSError:
            pass
        finally:
            target.close()

    def close(self) -> None:
        self.server.close()


def test_a_big_route_on_a_slow_engine_gets_the_truth_not_a_timeout(engine):
    """32 MiB to a node whose engine link holds its answer back longer than a small call
    may take (5 s) by a quarter of the time its bytes are granted: the route is given
    time for its bytes, so it is acknowledged and delivered, with three quarters of that
    grant (3 s) to spare, and the heartbeat, on its own connection, never lapses."""
    from chatsh.cluster.backplane import RedisBackplane
    from chatsh.cluster.calls import BASE_DEADLINE, ENGINE_RATE
    from chatsh.cluster.config import ClusterConfig
    from chatsh.embedded import EmbeddedServer

    body = b"x" * (32 << 20)
    granted = len(body) / ENGINE_RATE
    link = SlowLink(engine.port, rate=len(body) / (BASE_DEADLINE + granted / 4))
    made = []
    try:
        nodes = []
        for name, port in (("here", link.port), ("there", engine.port)):
            log: list[str] = []
            backplane = RedisBackplane(ClusterConfig(f"redis://127.0.0.1:{port}/0", name),
                                       log.append)
            server = EmbeddedServer(backplane=backplane)
            server._server.log = log.append
            made.append(server.start())
            nodes.append((server, log))
        (here, here_log), (there, _) = nodes
        ann, bob = RawClient(here.port), RawClient(there.port)
        assert ann.login("ann") == b"HELLO ann" and bob.login("bob") == b"HELLO bob"
        ann.write(b"SEND bob " + body + b"\n")
        assert ann.read_line(timeout=30) == b"SEND-OK", here_log
        assert bob.read_line(timeout=30) == b"DELIVERY ann " + body
        assert not any("out of reach" in line for line in here_log), here_log
    finally:
        for server in made:
            server.stop()
        link.close()


@pytest.mark.parametrize("count", [2, 3, 4, 16])
def test_groups_fall_in_equal_ranges_of_the_slots(count):
    """Group k's hash tag is in the k-th of K equal ranges of the 16,384 slots, so shards
    that share the slots evenly hold the groups evenly; one group keeps the old tag."""
    from redis.crc import key_slot

    from chatsh.cluster.groups import prefixes

    tags = prefixes("chatsh", count)
    assert [key_slot(f"{tag}:claims".encode()) * count // 16384 for tag in tags] == list(
        range(count))
    assert len(set(tags)) == count and tags == prefixes("chatsh", count)
    assert prefixes("chatsh", 1) == ["{chatsh:chatsh}"]
    assert prefixes("other", count) != tags


@given(st.lists(st.text(max_size=8), max_size=30), st.integers(1, 8))
def test_names_are_grouped_by_their_skeletons_the_same_everywhere(names, count):
    from chatsh.cluster.groups import by_group, group_of

    skeletons = [name_skeleton(name) for name in names]
    positions = by_group(skeletons, count)
    assert sorted(at for where in positions for at in where) == list(range(len(names)))
    for group, where in enumerate(positions):
        assert all(group_of(skeletons[at], count) == group for at in where)
        assert where == sorted(where)
    assert group_of(name_skeleton("Bob"), 4) == group_of(name_skeleton("bob"), 4)


def test_a_list_stays_within_its_bound_across_the_groups_of_a_cluster(engine, cluster_node):
    """However many names the groups hold, LIST-OK gives at most the bound, echobot
    among them: each group gives at most that many, and the node keeps the first."""
    here, _, _ = cluster_node("here", groups=3, max_listed=4)
    there, _, _ = cluster_node("there", groups=3)
    users = [RawClient(server.port) for server in (here, there) for _ in range(4)]
    for index, user in enumerate(users):
        assert user.login(f"u{index}") == f"HELLO u{index}".encode()
    users[0].write(b"LIST\n")
    listed = users[0].read_line().removeprefix(b"LIST-OK ").split(b",")
    assert listed[0] == b"echobot" and len(set(listed[1:])) == 3
    assert set(listed[1:]) <= {f"u{index}".encode() for index in range(8)}
    users[4].write(b"LIST\n")  # a node with the default bound lists them all
    assert users[4].read_line().count(b",") == 8


def test_a_single_server_lists_at_most_its_bound():
    from chatsh.embedded import EmbeddedServer
    from chatsh.server import ServerConfig

    server = EmbeddedServer(ServerConfig(max_listed=3)).start()
    try:
        users = [RawClient(server.port) for _ in range(4)]
        for index, user in enumerate(users):
            assert user.login(f"u{index}") == f"HELLO u{index}".encode()
        users[0].write(b"LIST\n")
        assert users[0].read_line() == b"LIST-OK echobot,u0,u1"
    finally:
        server.stop()



@pytest.mark.parametrize("url, ports", [
    ("redis+sentinel://127.0.0.1/chatsh", [26379]),
    ("redis+sentinel://10.0.0.5,[::1]:26380,h:7/chatsh/2", [26379, 26380, 7]),
])
def test_a_sentinel_address_without_a_port_is_on_the_sentinel_port(url, ports):
    """26379, the sentinels' port, not the engine's 6379."""
    from chatsh.cluster.engines import engine_client

    client = engine_client(url)
    sentinels = client.connection_pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == ports


def test_the_group_tags_are_found_in_linear_time():
    """1,024 groups (the most there may be) in well under a second: before, each group
    searched its own tags, about K tries each, 8.4 s of CPU for 4,096."""
    from redis.crc import key_slot

    from chatsh.cluster.config import MAX_GROUPS
    from chatsh.cluster.groups import prefixes

    started = time.process_time()
    tags = prefixes("chatsh", MAX_GROUPS)
    assert time.process_time() - started < 0.5
    assert [key_slot(tag.encode()) * MAX_GROUPS // 16384 for tag in tags] == list(
        range(MAX_GROUPS))


class SlowReads:
    """An engine whose every XREAD takes ``seconds``: the first that gets through is
    answered with one entry, the rest with nothing."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.tries = 0
        self.answered = False

    async def execute_command(self, *args: object) -> object:
        self.tries += 1
        await asyncio.sleep(self.seconds)
        if self.answered:
            return None
        self.answered = True
        return [[b"inbox", [(b"1-1", {b"d": b"payload"})]]]


def test_a_read_that_takes_longer_than_its_deadline_gets_more_time_next_time(monkeypatch):
    """A big inbox on a loaded machine may take longer to read than the deadline allows:
    each read that times out is tried again from the same place with twice the time, so
    it comes through instead of being read again and again forever."""
    from chatsh.cluster import inbox as inboxes
    from chatsh.cluster.groups import Group

    monkeypatch.setattr(inboxes, "BLOCK_MS", 0)
    monkeypatch.setattr(inboxes, "RETRY_PAUSE", 0.01)

    async def scenario() -> tuple[list[list[bytes]], int]:
        engine = SlowReads(0.25)
        group = Group("{t}", "n", engine, engine, "NUMSUB")
        taken: list[list[bytes]] = []
        reader = inboxes.Inbox(group, engine, taken.append, lambda group, exc: None, 0.1)
        reader.open("e1")
        for _ in range(200):
            await asyncio.sleep(0.01)
            if taken:
                break
        reader.stop()
        return taken, engine.tries

    taken, tries = asyncio.run(scenario())
    assert taken == [[b"payload"]], tries


@pytest.mark.timeout(60)
def test_a_name_whose_login_failed_while_a_heartbeat_reclaimed_it_is_given_back(
        engine, cluster_node):
    """A heartbeat's reclaim takes the names being claimed too, so that a claim granted
    meanwhile is not dropped. The engine hangs: carol's login is refused at its deadline
    (BUSY, her claim came too late to act), while the reclaim that went after it is run in
    time and takes her name for this node, which has no carol. The name stayed held
    until the next heartbeat (a third of the lease: 20 s here), and carol, told BUSY,
    was told IN-USE when she tried again."""
    here, plane, _ = cluster_node("here", lease=60)
    there, _, _ = cluster_node("there", lease=60)
    group = plane._groups[0]

    async def no_problem(strict: bool) -> None:
        return None  # (the count's round trips would let carol's answer come first)

    plane._group_count_problem = no_problem
    carol = RawClient(here.port)
    engine.proc.send_signal(signal.SIGSTOP)
    try:
        asked = time.monotonic()
        carol.write(b"HELLO-FROM carol\n")
        wait_for(lambda: "carol" in plane._claiming, "carol's claim to be under way")
        time.sleep(max(0.0, asked + 2.0 - time.monotonic()))
        reclaimed = asyncio.run_coroutine_threadsafe(plane._reclaim(group), here._loop)
        assert carol.read_line(timeout=15) == b"BUSY"
        time.sleep(max(0.0, asked + 5.5 - time.monotonic()))  # past carol's engine deadline
    finally:
        engine.proc.send_signal(signal.SIGCONT)
    reclaimed.result(15)
    wait_for(lambda: engine.command("HEXISTS", group.keys[0], "carol") == b":0\r\n",
             "carol's name to be given back", timeout=3)
    assert RawClient(there.port).login("carol") == b"HELLO carol"


class TwoStreams:
    """An engine with two inbox streams, e1 holding entries 1-1 and 1-2, e2 empty; an
    XREAD answers what follows the id it is given."""

    def __init__(self) -> None:
        self.streams = {"e1": [(b"1-1", {b"d": b"one"}), (b"1-2", {b"d": b"two"})],
                        "e2": []}

    async def execute_command(self, *args: object) -> object:
        stream, after = str(args[-2]).rsplit("/", 1)[1], args[-1]
        await asyncio.sleep(0.01)
        ms, _, seq = (after.decode() if isinstance(after, bytes) else str(after)).partition("-")
        entries = [(entry_id, fields) for entry_id, fields in self.streams[stream]
                   if tuple(map(int, entry_id.split(b"-"))) > (int(ms), int(seq))]
        return [[b"inbox", entries]] if entries else None

    def pipeline(self, transaction: bool):
        engine, read = self, []

        class Pipeline:
            def execute_command(self, *args: object) -> None:
                read[:] = args  # the trim first, then the read: the read stays

            async def execute(self, raise_on_error: bool) -> list[object]:
                return [1, await engine.execute_command(*read)]
        return Pipeline()


def test_an_inbox_met_again_goes_on_from_where_it_stopped():
    """An engine restarted empty gives the node a new inbox (e2); a failover to a replica
    that still held the data from before the restart gives it the old one (e1) back. It
    was read from its start again: what had been passed on but not yet trimmed came
    twice (six messages in a run of bench/cluster_faults.py). Now an epoch met again is
    read on from the last id passed on."""
    from chatsh.cluster import inbox as inboxes
    from chatsh.cluster.groups import Group

    async def scenario() -> list[list[bytes]]:
        engine = TwoStreams()
        group = Group("{t}", "n", engine, engine, "NUMSUB")
        taken: list[list[bytes]] = []
        reader = inboxes.Inbox(group, engine, taken.append, lambda group, exc: None, 1.0)
        for epoch in ("e1", "e2", "e1"):
            reader.open(epoch)
            for _ in range(5):
                await asyncio.sleep(0.02)
        reader.stop()
        return taken

    assert asyncio.run(scenario()) == [[b"one", b"two"]]


@pytest.mark.parametrize("end", ["leaves", "login deadline"])
def test_a_connection_ended_during_its_claim_gives_its_address_share_back(node, end):
    """A connection that ends while the cluster claims its name (the client leaves, or
    the login deadline passes with the engine slow): its place among its address's users
    must come back, or 3 such tries lock the address out of the node for good."""
    server, backplane, _ = node(set(), max_clients=4,  # 3 users from one address
                                handshake_timeout=0.3 if end == "login deadline" else 60)
    backplane.claims_open = False
    ending = [RawClient(server.port) for _ in range(3)]
    for index, client in enumerate(ending):
        client.write(f"HELLO-FROM gone{index}\n".encode())
    wait_for(lambda: len(backplane.claiming) == 3, "three claims to be under way")
    for client in ending:
        if end == "leaves":
            client.close()
        else:
            assert client.closed()
    backplane.claims_open = True
    deadline = time.monotonic() + DEADLINE
    users = []
    while len(users) < 3:
        client = RawClient(server.port)
        answer = client.login(f"back{len(users)}")
        if answer == f"HELLO back{len(users)}".encode():
            users.append(client)
            continue
        assert answer == b"BUSY" and time.monotonic() < deadline, (answer, len(users))
        client.close()
        time.sleep(0.02)


def test_a_backplane_call_that_fails_unexpectedly_ends_that_connection_only(node):
    """A read that waits for the backplane runs in a task while its connection reads
    nothing: when the call failed in a way nobody foresaw, the task ended and left the
    connection paused for good, its name taken. It is closed now, and the name free."""
    server, backplane, log = node({"remote"})

    async def broken(parcels):
        raise RuntimeError("a fault in the engine's client")

    backplane.route = broken
    alice = RawClient(server.port)
    assert alice.login("alice") == b"HELLO alice"
    alice.write(b"SEND remote hi\n")
    assert alice.closed(timeout=5)
    again = RawClient(server.port)
    assert again.login("alice") == b"HELLO alice"
