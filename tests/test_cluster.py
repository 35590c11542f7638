"""``chatsh serve --cluster``: several nodes on one real Valkey engine behave as one server."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from cluster import (
    LEASE,
    Engine,
    Node,
    Sentinel,
    Shards,
    crosses_again,
    free_port,
    user,
    user_once_back,
    wait_for,
)
from conftest import CHATSH, DEADLINE, RawClient, chatsh_env

from chatsh.cluster.groups import group_of, prefixes


def stop_all(clients: list[RawClient], started: list[Node], shards: Shards) -> None:
    """Close the clients, stop the nodes, then the shards."""
    for client in clients:
        client.close()
    for node in started:
        node.stop()
    shards.kill()


def conform_each_against_the_next(cluster: list[Node]) -> None:
    """``chatsh conform --peer`` passes on every node, the next one as its peer."""
    for node, peer in zip(cluster, cluster[1:] + cluster[:1], strict=True):
        run = subprocess.run([CHATSH, "conform", "--port", str(node.port), "--peer",
                              f"127.0.0.1:{peer.port}"], capture_output=True, text=True,
                             env=chatsh_env(), timeout=120)
        assert run.returncode == 0, run.stdout[-3000:]
        assert "peer.send" in run.stdout and " 0 failed" in run.stdout


def test_conform_passes_against_every_node_of_three(nodes):
    conform_each_against_the_next(nodes(3))


def test_the_peer_cases_fail_on_two_separate_servers(serve_process, tmp_path):
    other = subprocess.Popen([CHATSH, "serve", "--port", "0"], stderr=subprocess.PIPE,
                             env=chatsh_env())
    try:
        port = int(other.stderr.readline().decode().split("127.0.0.1:")[1].split()[0])
        run = subprocess.run([CHATSH, "conform", "--port", str(serve_process), "--peer",
                              f"127.0.0.1:{port}", "-k", "peer.", "--timeout", "1"],
                             capture_output=True, text=True, env=chatsh_env(), timeout=60)
    finally:
        other.kill()
        other.wait()
    assert run.returncode == 1
    assert "0 passed, 7 failed" in run.stdout, run.stdout
    for case in ("peer.name-unique", "peer.list", "peer.send", "peer.order", "peer.freed "):
        assert any(line.startswith(case) and "FAIL" in line
                   for line in run.stdout.splitlines()), (case, run.stdout)


def test_one_name_claimed_from_three_nodes_at_once_goes_to_one(nodes):
    cluster = nodes(3)
    contenders = [RawClient(node.port) for node in cluster for _ in range(10)]
    nodes.clients.extend(contenders)
    variants = ["racer", "RACER", "rаcer"]  # the last with a Cyrillic a
    go = threading.Barrier(len(contenders))

    def attempt(index: int, client: RawClient) -> None:
        go.wait()
        client.write(f"HELLO-FROM {variants[index % 3]}\n".encode())

    threads = [threading.Thread(target=attempt, args=pair) for pair in enumerate(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answers = [client.read_line() for client in contenders]
    winners = [answer for answer in answers if answer and answer.startswith(b"HELLO ")]
    assert len(winners) == 1, answers
    assert answers.count(b"IN-USE") == len(contenders) - 1


def test_two_thousand_pipelined_messages_cross_in_order(nodes):
    here, there = nodes(2)
    sender, recipient = user(nodes, here, "sender"), user(nodes, there, "recipient")
    count = 2000
    sender.write(b"".join(f"SEND recipient m{i} ✓\n".encode() for i in range(count)))
    for i in range(count):
        assert recipient.read_line() == f"DELIVERY sender m{i} ✓".encode()
    replies = [sender.read_line() for _ in range(count)]
    assert replies == [b"SEND-OK"] * count


def test_a_twenty_mib_message_crosses_nodes(nodes):
    here, there = nodes(2)
    sender, recipient = user(nodes, here, "big"), user(nodes, there, "reader")
    body = b"x" * (20 << 20)
    sender.write(b"SEND reader " + body + b"\n")
    assert sender.read_line(timeout=30) == b"SEND-OK"
    assert recipient.read_line(timeout=30) == b"DELIVERY big " + body


def test_killing_a_node_frees_its_names_within_the_lease(nodes):
    doomed, left, right = nodes(3)
    user(nodes, doomed, "alice")
    carol, dave = user(nodes, left, "carol"), user(nodes, right, "dave")
    doomed.kill()
    killed_at = time.monotonic()
    freed = {}

    def alice_free() -> bool:
        client = RawClient(left.port)
        nodes.clients.append(client)
        answer = client.login("alice")
        freed["at"] = time.monotonic() - killed_at
        return answer == b"HELLO alice"

    carol.write(b"SEND dave still here\n")
    assert carol.read_line() == b"SEND-OK"
    assert dave.read_line() == b"DELIVERY carol still here"
    wait_for(alice_free, "alice to be free again")
    assert freed["at"] < LEASE + 1.0, freed
    dave.write(b"LIST\n")
    names = dave.read_line().decode().split(" ", 1)[1].split(",")
    assert sorted(names) == ["alice", "carol", "dave", "echobot"]


def test_the_cluster_survives_a_restart_of_the_engine(engine, nodes):
    here, there = nodes(2)
    alice, bob = user(nodes, here, "alice"), user(nodes, here, "bob")
    carol = user(nodes, there, "carol")
    engine.kill()
    wait_for(lambda: here.logged("out of reach"), "node to notice the engine is gone")
    alice.write(b"SEND bob local still works\nSEND carol across\n")
    assert alice.read_line() == b"SEND-OK"
    assert bob.read_line() == b"DELIVERY alice local still works"
    assert alice.read_line() == b"BAD-DEST-USER"
    assert RawClient(here.port).login("newcomer") == b"BUSY"
    engine.start(same_port=True)
    for node in (here, there):
        wait_for(lambda node=node: node.logged("engine is back"), f"{node.name} to recover")
    crosses_again(alice, carol, "hello again")
    assert RawClient(there.port).login("alice") == b"IN-USE"
    assert sum("engine is out of reach" in line for line in here.log) == 1, "\n".join(here.log)


def test_a_lost_subscription_comes_back(engine, nodes):
    here, there = nodes(2)
    ann, bob = user(nodes, here, "ann"), user(nodes, there, "bob")
    assert engine.command("CLIENT", "KILL", "TYPE", "pubsub").startswith(b":2")

    def crosses() -> bool:
        ann.write(b"SEND bob again\n")
        return ann.read_line() == b"SEND-OK"

    wait_for(crosses, "bob's node to listen again")
    assert bob.read_line() == b"DELIVERY ann again"


def test_max_clients_counts_per_node(nodes):
    full, roomy = nodes(2, "--max-clients", "1")
    user(nodes, full, "first")
    assert RawClient(full.port).login("second") == b"BUSY"
    user(nodes, roomy, "second")


@pytest.mark.timeout(180)  # 40 MiB through two nodes and the engine: slow on a loaded machine
def test_a_recipient_that_stops_reading_slows_nobody(nodes):
    here, there = nodes(2, "--max-line", str(1 << 20))
    stuck = RawClient(there.port)
    nodes.clients.append(stuck)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert stuck.login("stuck") == b"HELLO stuck"
    reader = user(nodes, there, "reader")
    sender = user(nodes, here, "sender")
    chunk = b"y" * ((1 << 20) - 64)
    for round_ in range(40):  # 40 MiB for stuck, 1 MiB at most may wait for it
        sender.write(b"SEND stuck " + chunk + b"\nSEND reader r%d\n" % round_)
        assert reader.read_line(timeout=3 * DEADLINE) == b"DELIVERY sender r%d" % round_
    wait_for(lambda: there.logged("dropped stuck"), "the stuck reader to be dropped")


@pytest.mark.parametrize("url, says", [
    (None, "cannot reach the cluster engine"),
    ("127.0.0.1:6379", "must specify one of"),
    ("redis+sentinel://127.0.0.1:{port}/chatsh", "no sentinel named a primary for 'chatsh' "
     "(Error 111 connecting to 127.0.0.1:{port}. Connection refused.)")])
def test_an_engine_out_of_reach_at_start_is_one_line(url, says):
    """A short line: a sentinel URL that no sentinel answers was 1,244 characters (the
    client library's whole connection settings)."""
    port = free_port()
    run = subprocess.run([CHATSH, "serve", "--port", "0", "--cluster",
                          (url or "redis://127.0.0.1:{port}").format(port=port)],
                         capture_output=True, text=True, env=chatsh_env(), timeout=30)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and says.format(port=port) in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr) < 200, run.stderr


def test_an_engine_that_refuses_config_serves_all_the_same(tmp_path):
    """Nothing of the engine's settings needs changing (a managed service refuses
    CONFIG): deliveries wait in streams, not in pub/sub buffers with their limits."""
    engine = Engine(tmp_path, "--rename-command", "CONFIG", "").start()
    nodes = []
    try:
        nodes = [Node(engine, "locked"), Node(engine, "other")]
        ann, bob = RawClient(nodes[0].port), RawClient(nodes[1].port)
        assert ann.login("ann") == b"HELLO ann" and bob.login("bob") == b"HELLO bob"
        crosses_again(ann, bob, "through a locked engine")
        assert not any("warning" in line for node in nodes for line in node.log)
        ann.close()
        bob.close()
    finally:
        for node in nodes:
            node.stop()
        engine.kill()


def test_a_node_name_in_use_is_refused(engine, nodes):
    (first,) = nodes(1)
    run = subprocess.run([CHATSH, "serve", "--port", "0", "--cluster", engine.url, "--node",
                          first.name], capture_output=True, text=True, env=chatsh_env(),
                         timeout=30)
    assert run.returncode == 2 and "in use by a live node" in run.stderr, run.stderr


def test_serving_alone_imports_nothing_of_redis():
    probe = ("import sys, asyncio\n"
             "from chatsh.modes import serve\n"
             "from chatsh.cli import serve_parser\n"
             "serve_parser().parse_args([])\n"
             "assert not [m for m in sys.modules if m.startswith('redis')], 'redis imported'\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=chatsh_env())
    assert run.returncode == 0, run.stderr


def test_cluster_options_without_a_cluster_are_an_error():
    run = subprocess.run([CHATSH, "serve", "--port", "0", "--node", "a"], capture_output=True,
                         text=True, env=chatsh_env(), timeout=30)
    assert run.returncode == 2 and "go with --cluster URL" in run.stderr, run.stderr


def test_scripts_the_engine_forgot_are_loaded_again_without_losing_a_request(engine, nodes):
    """After SCRIPT FLUSH the first call gets NOSCRIPT: it is retried, not failed."""
    here, there = nodes(2)
    ann, bob = user(nodes, here, "ann"), user(nodes, there, "bob")
    ann.write(b"SEND bob before\n")
    assert ann.read_line() == b"SEND-OK"
    assert bob.read_line() == b"DELIVERY ann before"
    assert engine.command("SCRIPT", "FLUSH").startswith(b"+OK")
    ann.write(b"SEND bob after the flush\n")
    assert ann.read_line() == b"SEND-OK"
    assert bob.read_line() == b"DELIVERY ann after the flush"


def test_nodes_follow_a_failover_that_sentinel_makes(tmp_path):
    """``redis+sentinel://``: the nodes ask the sentinel for the primary and follow it when
    a replica takes over; the names and the routes are there again on the new primary."""
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    primary = Engine(tmp_path / "p").start()
    replica = Engine(tmp_path / "r", "--replicaof", "127.0.0.1", str(primary.port)).start()
    sentinel = None
    started: list[Node] = []
    try:
        wait_for(lambda: b"master_link_status:up" in replica.command("INFO", "replication"),
                 "the replica to follow the primary")
        sentinel = Sentinel(tmp_path, primary)
        wait_for(lambda: str(replica.port).encode() in sentinel.command(
            "SENTINEL", "REPLICAS", "chatsh"), "the sentinel to know the replica")
        here = Node(sentinel, "here", "--lease", str(LEASE))
        started.append(here)
        there = Node(sentinel, "there", "--lease", str(LEASE))
        started.append(there)
        alice, bob = RawClient(here.port), RawClient(there.port)
        assert alice.login("alice") == b"HELLO alice" and bob.login("bob") == b"HELLO bob"
        alice.write(b"SEND bob before\n")
        assert alice.read_line() == b"SEND-OK"
        assert bob.read_line() == b"DELIVERY alice before"

        # until the sentinel has seen the replica answer, it has no good one to promote
        wait_for(lambda: sentinel.command("SENTINEL", "FAILOVER", "chatsh").startswith(b"+OK"),
                 "the sentinel to start a failover")
        wait_for(lambda: replica.command("ROLE").startswith(b"*3\r\n$6\r\nmaster"),
                 "the replica to become the primary")
        primary.kill()  # the nodes can only go on through the sentinel's word
        crosses_again(alice, bob, "after", timeout=DEADLINE + Sentinel.FAILOVER_TIMEOUT)

        def alice_held_there() -> bool:  # each node finds the new primary on its own
            probe = RawClient(there.port)
            try:
                return probe.login("alice") == b"IN-USE"
            finally:
                probe.close()

        wait_for(alice_held_there, "the names to hold on the other node too",
                 timeout=DEADLINE + Sentinel.FAILOVER_TIMEOUT)
        carol = RawClient(there.port)
        assert carol.login("carol") == b"HELLO carol"
        assert b"there carol" in replica.command("HGETALL", "{chatsh:chatsh}:claims")
        carol.close()
    finally:
        for node in started:
            node.stop()
        for engine in (sentinel, replica, primary):
            if engine is not None:
                engine.kill()


@pytest.mark.parametrize("url, says", [
    ("redis+sentinel://127.0.0.1:26379", "names the service after the addresses"),
    ("redis+sentinel://127.0.0.1:x/chatsh", "not a sentinel address"),
    ("redis+cluster://127.0.0.1:x", "not a cluster address"),
    ("redis+cluster://127.0.0.1:7000/2", "a Redis Cluster has no databases"),
    ("redis+sentinel://127.0.0.1:99999/chatsh", "not a sentinel address"),
    ("redis+cluster://127.0.0.1:0", "not a cluster address"),
])
def test_a_sentinel_or_cluster_url_without_its_parts_is_one_line(url, says):
    run = subprocess.run([CHATSH, "serve", "--port", "0", "--cluster", url],
                         capture_output=True, text=True, env=chatsh_env(), timeout=30)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and says in run.stderr, run.stderr


@pytest.mark.parametrize("groups", [1, 4])
def test_nodes_given_different_shards_of_a_redis_cluster_are_one_server(tmp_path, groups):
    """``--cluster redis+cluster://``: each node is given another shard's address; the
    cluster client finds the shards, and routes go over sharded channels there. With
    four groups the names and the channels spread over the shards."""
    shards = Shards(tmp_path, 3)
    started: list[Node] = []
    clients: list[RawClient] = []
    try:
        nodes_on_shards(shards, 3, groups, started)
        conform_each_against_the_next(started)
        for index in range(12):  # names that stay, to see where their claims are kept
            clients.append(RawClient(started[index % 3].port))
            assert clients[-1].login(f"user{index}") == f"HELLO user{index}".encode()
        holding = [engine for engine in shards.engines
                   if b":claims" in engine.command("KEYS", "*")]
        assert len(holding) == 1 if groups == 1 else len(holding) >= 2
        clients[0].write(b"SEND user1 across\n")
        assert clients[0].read_line() == b"SEND-OK"
        assert clients[1].read_line() == b"DELIVERY user0 across"
        time.sleep(2 * LEASE)  # heartbeats, each of which checks that the node listens
        ages = []
        for engine in shards.engines:
            ages += [int(line.split(b" age=")[1].split()[0])
                     for line in engine.command("CLIENT", "LIST").split(b"\n")
                     if b" ssub=" in line and b" ssub=0 " not in line]
        assert len(ages) >= 3, ages
        assert min(ages) >= 2 * LEASE - 1, ages  # not subscribed again meanwhile
        assert not any(node.logged("out of reach") for node in started)
        refused = subprocess.run(
            [CHATSH, "serve", "--port", "0", "--cluster", shards.url, "--node", "odd",
             "--groups", str(groups + 1)], capture_output=True, text=True, env=chatsh_env(),
            timeout=60)
        assert refused.returncode == 2
        assert f"split into {groups} groups; start this node with --groups {groups}" in (
            refused.stderr)
    finally:
        stop_all(clients, started, shards)


def nodes_on_shards(shards: Shards, count: int, groups: int, started: list[Node],
                    lease: float = LEASE) -> None:
    """``count`` nodes, each given another shard's address, ``groups`` groups."""
    for index in range(count):
        shards.first = index
        started.append(Node(shards, f"n{index}", "--lease", str(lease), "--groups",
                            str(groups)))


def logged_in(started: list[Node], clients: list[RawClient],
              plan: list[tuple[int, str]]) -> list[RawClient]:
    """A client per (node index, name), logged in."""
    new = [RawClient(started[at].port) for at, _ in plan]
    clients += new
    for client, (_, name) in zip(new, plan, strict=True):
        assert client.login(name) == f"HELLO {name}".encode()
    return new


def test_a_plain_address_of_a_shard_is_taken_for_the_cluster(tmp_path):
    """``redis://`` naming one shard, whichever: the node sees the engine is a Redis
    Cluster and finds the other shards, as with ``redis+cluster://`` (before, a shard
    that did not own the slot made it exit with a raw ``MOVED``-like line)."""
    shards = Shards(tmp_path, 3)
    started: list[Node] = []
    clients: list[RawClient] = []
    try:
        for index, engine in enumerate(shards.engines):
            shards.first = index
            started.append(Node(engine, f"n{index}", "--lease", str(LEASE), "--groups", "3"))
        assert any(node.logged("is a Redis Cluster") for node in started)
        conform_each_against_the_next(started)
        refused = subprocess.run(
            [CHATSH, "serve", "--port", "0", "--cluster", shards.engines[0].url + "/2",
             "--node", "odd"], capture_output=True, text=True, env=chatsh_env(), timeout=60)
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1 and "no databases" in refused.stderr, (
            refused.stderr)
    finally:
        stop_all(clients, started, shards)


def alice_and_bob(shards: Shards, groups: int, started: list[Node],
                  clients: list[RawClient], lease: float = LEASE
                  ) -> tuple[RawClient, RawClient]:
    """Two nodes given different shards' addresses, alice logged in on one and bob on
    the other, and a message crossed between them."""
    nodes_on_shards(shards, 2, groups, started, lease)
    alice, bob = logged_in(started, clients, [(0, "alice"), (1, "bob")])
    crosses_again(alice, bob, "before")
    return alice, bob


def bobs_group(groups: int) -> str:
    """The hash tag of the group bob's name falls in, without its braces."""
    from chatsh.names import name_skeleton

    return prefixes("chatsh", groups)[group_of(name_skeleton("bob"), groups)].strip("{}")


def every_one_crosses(alice: RawClient, bob: RawClient, prefix: str) -> None:
    """Twenty messages, each acknowledged and delivered."""
    for number in range(20):
        alice.write(f"SEND bob {prefix}{number}\n".encode())
        assert alice.read_line() == b"SEND-OK"
        assert bob.read_line() == f"DELIVERY alice {prefix}{number}".encode()


def test_a_shard_failover_keeps_every_acknowledged_message(tmp_path):
    """``CLUSTER FAILOVER`` on the replica of the shard that holds bob's group: nodes
    follow the new primary; a SEND-OK is still a delivery, and messages cross again."""
    shards = Shards(tmp_path, 3, replicas=True)
    started: list[Node] = []
    clients: list[RawClient] = []
    try:
        alice, bob = alice_and_bob(shards, 3, started, clients)
        index = shards.owner(bobs_group(3))
        replica = shards.replicas[index]
        assert b"+OK" in replica.command("CLUSTER", "FAILOVER")
        wait_for(lambda: b"role:master" in replica.command("INFO", "replication"),
                 "the replica to take over")
        back = crosses_again(alice, bob, "after")  # each refusal meanwhile is BAD-DEST-USER
        assert back < 5.0, back  # the bar is 2 s; this leaves room for a busy CI
        every_one_crosses(alice, bob, "m")
    finally:
        stop_all(clients, started, shards)


def test_a_slot_migration_keeps_every_acknowledged_message(tmp_path):
    """The slot of bob's group moves to the other shard (IMPORTING, MIGRATING, MIGRATE,
    SETSLOT NODE) while alice writes to him: every SEND-OK meanwhile is a delivery, and
    messages cross again soon after the slot has moved: the engine drops the
    subscriptions of a slot that moves, and the node subscribes again at once, not at
    its next heartbeat (10 s away with this lease)."""
    import redis

    shards = Shards(tmp_path, 2)
    started: list[Node] = []
    clients: list[RawClient] = []
    try:
        alice, bob = alice_and_bob(shards, 2, started, clients, lease=30)
        tag = bobs_group(2)
        owner = shards.owner(tag)
        source, target = (redis.Redis(port=shards.engines[at].port) for at in (owner, 1 - owner))
        slot = source.cluster("KEYSLOT", tag)
        source_id, target_id = (engine.cluster("MYID").decode() for engine in (source, target))
        acknowledged = []

        def write(number: int) -> None:
            alice.write(f"SEND bob m{number}\n".encode())
            if alice.read_line() == b"SEND-OK":
                acknowledged.append(number)

        write(0)
        target.cluster("SETSLOT", slot, "IMPORTING", source_id)
        source.cluster("SETSLOT", slot, "MIGRATING", target_id)
        write(1)
        keys = source.cluster("GETKEYSINSLOT", slot, 1000)
        assert keys, "the group's keys to be on the source shard"
        source.execute_command("MIGRATE", "127.0.0.1", target.connection_pool.connection_kwargs[
            "port"], "", 0, 5000, "KEYS", *keys)
        write(2)
        for engine in (target, source):
            engine.cluster("SETSLOT", slot, "NODE", target_id)
        moved = time.monotonic()
        write(3)
        for number in acknowledged:
            assert bob.read_line() == f"DELIVERY alice m{number}".encode()
        back = crosses_again(alice, bob, "after")
        assert time.monotonic() - moved < 5.0, back  # the bar is 2 s; room for CI
        assert target.cluster("COUNTKEYSINSLOT", slot) > 0
        every_one_crosses(alice, bob, "n")
    finally:
        stop_all(clients, started, shards)


def names_in_groups_of(shards: Shards, shard: int, groups: int, count: int) -> list[str]:
    """``count`` user names whose group lives on ``shard``."""
    tags = [tag.strip("{}") for tag in prefixes("chatsh", groups)]
    owned = [shards.owner(tag) == shard for tag in tags]
    return [name for name in (f"u{number}" for number in range(1000))
            if owned[group_of(name, groups)]][:count]


@pytest.fixture
def three_shards(tmp_path):
    """Three shards that serve without full coverage, a group on each, and two nodes
    given the first two shards' addresses; then (shards, nodes, clients), all stopped
    by their ids afterwards."""
    shards = Shards(tmp_path, 3, full_coverage=False)
    started: list[Node] = []
    clients: list[RawClient] = []
    try:
        nodes_on_shards(shards, 2, 3, started)
        yield shards, started, clients
    finally:
        stop_all(clients, started, shards)


def test_a_dead_shard_stops_only_the_names_in_its_groups(three_shards):
    """A shard with no replica dies (the engine set to serve without every slot): the
    names in the other shards' groups keep logging in and talking, those in its groups
    are refused, and they cross again soon after it returns (empty)."""
    shards, started, clients = three_shards
    alive = names_in_groups_of(shards, 0, 3, 2) + names_in_groups_of(shards, 1, 3, 2)
    doomed = names_in_groups_of(shards, 2, 3, 2)
    sender, friend, cut_off = logged_in(started, clients,
                                        [(0, alive[0]), (1, alive[2]), (1, doomed[0])])
    late = RawClient(started[0].port)
    clients.append(late)
    crosses_again(sender, cut_off, "before")
    shards.engines[2].kill()
    for number in range(40):  # through two leases and more: nothing in between
        sender.write(f"SEND {friend.name} m{number}\n".encode())
        assert sender.read_line() == b"SEND-OK", number
        assert friend.read_line() == f"DELIVERY {sender.name} m{number}".encode()
        time.sleep(0.1)
    sender.write(f"SEND {cut_off.name} lost\n".encode())
    assert sender.read_line() == b"BAD-DEST-USER"
    assert late.login(alive[1]) == f"HELLO {alive[1]}".encode()
    refused = RawClient(started[0].port)
    clients.append(refused)
    assert refused.login(doomed[1]) != f"HELLO {doomed[1]}".encode()
    for client in (sender, friend):  # a node lists its own users in the lost group
        client.write(b"LIST\n")
        listed = set(client.read_line().removeprefix(b"LIST-OK ").decode().split(","))
        assert {sender.name, friend.name, alive[1]} <= listed, listed
        assert (cut_off.name in listed) == (client is friend), listed
    for node in started:
        assert node.proc.poll() is None
        assert not node.logged("engine is out of reach"), node.log
    shards.engines[2].start(same_port=True)
    probe = prefixes("chatsh", 3)[2] + ":probe"  # a key of the shard's groups' slots
    wait_for(lambda: b"+OK" in shards.engines[2].command("SET", probe, "1"),
             "the shard to take writes (a restarted primary waits 2 s)")
    back = crosses_again(sender, cut_off, "after")
    assert back < 5.0, back  # the bar is 2 s; this leaves room for a busy CI
    again = RawClient(started[0].port)
    clients.append(again)
    assert again.login(doomed[1]) == f"HELLO {doomed[1]}".encode()


def test_a_hung_shard_holds_back_only_the_names_in_its_groups(three_shards):
    """A shard that stops answering without closing anything (SIGSTOP): calls to it
    wait for their deadline, and meanwhile the leases in the other groups are renewed
    on time, so their names keep talking; once it answers again, its group's names
    cross again."""
    shards, started, clients = three_shards
    alive = names_in_groups_of(shards, 0, 3, 1) + names_in_groups_of(shards, 1, 3, 1)
    (stuck,) = names_in_groups_of(shards, 2, 3, 1)
    sender, friend, far = logged_in(started, clients,
                                    [(0, alive[0]), (1, alive[1]), (1, stuck)])
    crosses_again(sender, far, "before")
    shard = shards.engines[2].proc
    shard.send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 4 * LEASE
        number = 0
        while time.monotonic() < deadline:  # past the leases the heartbeat renews
            number += 1
            sender.write(f"SEND {friend.name} m{number}\n".encode())
            assert sender.read_line() == b"SEND-OK", number
            assert friend.read_line() == f"DELIVERY {sender.name} m{number}".encode()
            time.sleep(0.05)
    finally:
        shard.send_signal(signal.SIGCONT)
    crosses_again(sender, far, "after")


def burst(senders: list[RawClient], recipients: list[RawClient], body: bytes) -> list[bytes]:
    """Each sender at once: a numbered line, ``body``, another numbered line, each to its
    recipient; the replies, each sender's in order."""
    def send(sender: RawClient, recipient: RawClient) -> None:
        name = recipient.name.encode()
        sender.write(b"SEND %s first\nSEND %s %s\nSEND %s last\n" % (name, name, body, name))

    threads = [threading.Thread(target=send, args=pair)
               for pair in zip(senders, recipients, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [sender.read_line(timeout=60) for sender in senders for _ in range(3)]


@pytest.mark.timeout(180)
def test_a_burst_to_a_stopped_node_arrives_whole_and_in_order(nodes):
    """Three 50 MiB messages at once to three users of a node that reads nothing meanwhile
    (stopped): every acknowledged message arrives once, in order, when it goes on. Over
    pub/sub the engine dropped the stopped node's subscription when its output buffer
    passed the limit, and the acknowledged messages with it."""
    here, there = nodes(2, "--lease", "20")
    senders = [user(nodes, here, f"s{index}") for index in range(3)]
    recipients = [user(nodes, there, f"r{index}") for index in range(3)]
    body = b"z" * (50 << 20)
    there.proc.send_signal(signal.SIGSTOP)
    try:
        replies = burst(senders, recipients, body)
    finally:
        there.proc.send_signal(signal.SIGCONT)
    assert replies == [b"SEND-OK"] * 9
    for sender, recipient in zip(senders, recipients, strict=True):
        head = b"DELIVERY %s " % sender.name.encode()
        assert recipient.read_line(timeout=60) == head + b"first"
        assert recipient.read_line(timeout=60) == head + body
        assert recipient.read_line(timeout=60) == head + b"last"
    for recipient in recipients:
        recipient.write(b"LIST\n")  # nothing more came before the answer
        assert recipient.read_line().startswith(b"LIST-OK ")


def test_what_waits_for_a_stopped_node_is_bounded_and_a_refusal_is_never_delivered(nodes):
    """A node that reads nothing (stopped) has an inbox of bounded size in the engine
    (four of its longest lines): sends past it are refused, BAD-DEST-USER, never a
    SEND-OK; when it goes on, exactly the acknowledged messages arrive, in order, and
    there is room again."""
    (here,) = nodes(1, "--lease", "20")
    (there,) = nodes(1, "--lease", "20", "--max-line", str(1 << 20))
    sender, recipient = user(nodes, here, "sender"), user(nodes, there, "reader")
    body = b"q" * (512 << 10)
    there.proc.send_signal(signal.SIGSTOP)
    try:
        replies = []
        for number in range(14):
            sender.write(b"SEND reader %d %s\n" % (number, body))
            replies.append(sender.read_line(timeout=30))
    finally:
        there.proc.send_signal(signal.SIGCONT)
    acknowledged = replies.count(b"SEND-OK")
    assert 6 <= acknowledged < 14, replies
    assert replies == [b"SEND-OK"] * acknowledged + [b"BAD-DEST-USER"] * (14 - acknowledged)
    for number in range(acknowledged):
        assert recipient.read_line(timeout=30) == b"DELIVERY sender %d %s" % (number, body)
    crosses_again(sender, recipient, "room again")


def test_every_acknowledged_message_arrives_once_in_order_through_killed_connections(
        engine, nodes):
    """The engine drops the nodes' connections (all but the listeners'), five times,
    while messages flow: the receiving node reads on from where it stopped, so every
    SEND-OK is delivered, once and in order, and nothing refused is delivered."""
    here, there = nodes(2)
    sender, recipient = user(nodes, here, "sender"), user(nodes, there, "reader")
    count = 5000
    for start in range(0, count, 500):  # paced: the kills fall while messages flow
        sender.write(b"".join(b"SEND reader m%d\n" % number
                              for number in range(start, start + 500)))
        time.sleep(0.1)
        if start % 1000 == 0:
            engine.command("CLIENT", "KILL", "TYPE", "normal")  # readers, routes, beats
    replies = [sender.read_line(timeout=30) for _ in range(count)]
    acknowledged = [number for number, reply in enumerate(replies) if reply == b"SEND-OK"]
    assert set(replies) <= {b"SEND-OK", b"BAD-DEST-USER"}, set(replies)
    assert acknowledged, "none acknowledged"
    ends = iter(range(count, 2 * count))  # one behind every acknowledged one, once back

    def end_acknowledged() -> bool:
        sender.write(b"SEND reader m%d\n" % next(ends))
        return sender.read_line(timeout=30) == b"SEND-OK"

    wait_for(end_acknowledged, "the nodes to be back")
    end = next(ends) - 1
    arrived = []
    while not arrived or arrived[-1] != end:
        line = recipient.read_line(timeout=30)
        assert line is not None, arrived[-3:]
        arrived.append(int(line.removeprefix(b"DELIVERY sender m")))
    assert arrived == [*acknowledged, end]


@pytest.mark.timeout(90)
def test_a_call_that_gave_up_never_acts_later(engine, nodes):
    """The engine hangs (SIGSTOP) for 7 s: a login is refused at its 5 s deadline, and a
    SEND across once the engine can tell that its route came late; when the engine goes
    on and runs the calls it was sent, each compares the engine's clock with its deadline
    and does nothing: the message is never delivered and the name is free."""
    here, there = nodes(2, "--lease", "20")
    ann, bob = user(nodes, here, "ann"), user(nodes, there, "bob")
    crosses_again(ann, bob, "before")
    late = RawClient(here.port)
    nodes.clients.append(late)
    engine.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        ann.write(b"SEND bob too late\n")
        late.write(b"HELLO-FROM carol\n")
        assert late.read_line(timeout=15) != b"HELLO carol"
        assert 4.5 < time.monotonic() - started < 6.5
        time.sleep(max(0.0, started + 7 - time.monotonic()))
    finally:
        engine.proc.send_signal(signal.SIGCONT)
    assert ann.read_line(timeout=15) == b"BAD-DEST-USER"
    watched_until = time.monotonic() + 1.0  # (the nodes' own cleanup comes later)
    while time.monotonic() < watched_until:
        assert engine.command("HEXISTS", "{chatsh:chatsh}:claims", "carol") == b":0\r\n"
        time.sleep(0.02)
    crosses_again(ann, bob, "after")  # anything delivered late would come before this


@pytest.mark.timeout(60)
def test_a_login_on_a_fresh_node_during_an_engine_hang_is_answered_at_its_deadline(
        engine, nodes):
    """A node that has made no call yet loads its scripts before the first one: that wait
    counts against the call's deadline (5 s) too, where it used to wait as long as the
    engine hung."""
    (fresh,) = nodes(1, "--lease", "30")  # no heartbeat's claims before the login
    engine.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        answer = RawClient(fresh.port).login("dora")
        took = time.monotonic() - started
    finally:
        engine.proc.send_signal(signal.SIGCONT)
    assert answer == b"BUSY" and took < 6.5, (answer, took)


def serve_refused(engine, *extra: str) -> str:
    """A node started with ``extra`` is refused: exit 2, one line on stderr; the line."""
    run = subprocess.run([CHATSH, "serve", "--port", "0", "--cluster", engine.url, *extra],
                         capture_output=True, text=True, env=chatsh_env(), timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    return run.stderr


def test_junk_in_the_group_count_is_one_line(engine):
    engine.command("SET", "{chatsh:chatsh}:groups", "abc\x1b[2J")
    line = serve_refused(engine, "--node", "a")
    assert "group count" in line and "\x1b" not in line, line


def test_too_many_groups_is_one_line():
    run = subprocess.run([CHATSH, "serve", "--port", "0", "--cluster", "redis://127.0.0.1:1",
                          "--groups", "16385"], capture_output=True, text=True,
                         env=chatsh_env(), timeout=30)
    assert run.returncode == 2 and "at most 1024" in run.stderr, run.stderr


@pytest.mark.parametrize("lease", ["0.001", "1e-9", "0.5", "3601", "1e12"])
def test_a_lease_too_short_or_too_long_to_work_is_one_line(lease):
    """--lease 0.001: the lease ran out before each renewal came back, so the node logged
    'lease gone, registering again' 400 times a second at full CPU and refused every login
    (BUSY); --lease 1e12 took every login for one the engine could not make unique."""
    run = subprocess.run([CHATSH, "serve", "--port", "0", "--cluster", "redis://127.0.0.1:1",
                          "--lease", lease], capture_output=True, text=True,
                         env=chatsh_env(), timeout=30)
    assert run.returncode == 2 and "argument --lease: must be from 1 to 3600" in run.stderr, (
        run.stderr)


def test_the_group_count_is_written_again_by_whoever_rejoins(engine, nodes):
    """After the engine restarts empty, the nodes that come back write their group count
    again: a node started with another count is refused, as before the restart, and a
    name is never held twice."""
    first, second = nodes(2, "--groups", "4")
    alice = user(nodes, first, "alice")
    engine.kill()
    engine.start(same_port=True)
    for node in (first, second):
        wait_for(lambda node=node: node.logged("back"), f"{node.name} to come back")
    wait_for(lambda: engine.command("GET", "{chatsh:chatsh}:groups") == b"$1\r\n4\r\n",
             "the count to be written again")
    assert "start this node with --groups 4" in serve_refused(engine, "--node", "odd",
                                                              "--groups", "1")
    crosses_again(user_once_back(nodes, second, "bob"), alice, "still one cluster")


def test_what_waits_for_a_node_stopped_past_its_lease_is_delivered_when_it_goes_on(nodes):
    """A node stopped for more than two leases: sends are refused once its lease has run
    out (its names are free then), but what was acknowledged before waits in its inbox,
    which outlives the lease by 30 s, and arrives when the node goes on."""
    here, there = nodes(2)
    sender, recipient = user(nodes, here, "sender"), user(nodes, there, "reader")
    there.proc.send_signal(signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        for number in range(2):  # the first may reach the node's socket: not the second
            sender.write(b"SEND reader before the lapse %d\n" % number)
            assert sender.read_line() == b"SEND-OK"

        acknowledged = [b"before the lapse 0", b"before the lapse 1"]

        def refused() -> bool:
            text = b"probe %d" % len(acknowledged)
            sender.write(b"SEND reader %s\n" % text)
            if sender.read_line() == b"SEND-OK":
                acknowledged.append(text)
                return False
            return True

        wait_for(refused, "the stopped node's lease to run out")
        time.sleep(max(0.0, stopped + 2.5 * LEASE - time.monotonic()))
    finally:
        there.proc.send_signal(signal.SIGCONT)
    for text in acknowledged:
        assert recipient.read_line() == b"DELIVERY sender " + text
    crosses_again(sender, recipient, "after")  # nothing refused came before this


def test_without_groups_a_redis_cluster_spreads_the_names_over_its_primaries(tmp_path):
    """No --groups on a Redis Cluster of three primaries: the first node fixes 4 groups per
    primary (12), room to grow, and writes it; the names land on more than one shard, and
    a node started later without --groups takes the cluster's count."""
    shards = Shards(tmp_path, 3)
    started: list[Node] = []
    clients: list[RawClient] = []
    try:
        for index in range(2):
            shards.first = index
            started.append(Node(shards, f"n{index}", "--lease", str(LEASE)))
        users = logged_in(started, clients, [(index % 2, f"user{index}") for index in range(12)])
        holding = [engine for engine in shards.engines
                   if b":claims" in engine.command("KEYS", "*")]
        assert len(holding) >= 2, len(holding)
        count = shards.engines[shards.owner("chatsh:chatsh")].command(
            "GET", "{chatsh:chatsh}:groups")
        assert count == b"$2\r\n12\r\n", count
        crosses_again(users[0], users[1], "across shards")
    finally:
        stop_all(clients, started, shards)


def test_without_groups_a_node_takes_the_count_the_engine_holds(engine, nodes):
    (first,) = nodes(1, "--groups", "3")
    (second,) = nodes(1)  # refused before: split into 3 groups, start with --groups 3
    crosses_again(user(nodes, first, "ann"), user(nodes, second, "bob"), "one cluster")


@pytest.mark.timeout(60)
def test_a_node_stopped_with_sigterm_passes_on_what_its_inbox_holds(nodes):
    """SIGTERM reached a node whose inbox held acknowledged messages it had not read yet
    (it was stopped a moment, or just busy): it gave its names back and closed its users,
    and the inbox went with it. 299 of 300 acknowledged messages were lost, every run;
    under a steady flow 401 of 13,801 in one run of two."""
    here, there = nodes(2, "--lease", "20")
    sender, recipient = user(nodes, here, "sender"), user(nodes, there, "reader")
    there.proc.send_signal(signal.SIGSTOP)
    try:
        for number in range(300):  # one at a time: an entry of the inbox each
            sender.write(b"SEND reader m%d\n" % number)
            assert sender.read_line() == b"SEND-OK"
        there.signal(signal.SIGTERM)
    finally:
        there.proc.send_signal(signal.SIGCONT)
    assert there.proc.wait(DEADLINE) == 0
    arrived = []
    while (line := recipient.read_line()) is not None:
        arrived.append(line)
    assert arrived == [b"DELIVERY sender m%d" % number for number in range(300)]
