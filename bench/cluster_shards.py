"""A cluster on a Redis Cluster of 1, 2 and 4 shards, the state in as many groups.

Three ``chatsh serve`` nodes, each given another shard's address, with ``--groups``
equal to the shards; 100 clients spread over them each pipeline 500 messages to a
client on another node. For each size: deliveries/s, the CPU per delivery of the
busiest shard and of the shards on average (their balance: busiest over mean), and
that nothing was lost (every SEND got SEND-OK, every message arrived once). Then,
with 4 shards, every message goes to users of one group only: what a shard that
holds neither sender's nor recipient's group spends per delivery. Last, still with
4 shards: the shard of group 3 is killed (it has no replica; the shards serve
without full coverage) while four senders, one per group, each keep one numbered
message outstanding to a user on another node, then started again, empty: what the
live groups carried meanwhile, when the dead group's messages crossed again, and
that every SEND-OK was a delivery.

    python bench/cluster_shards.py   (needs the test extra)
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import redis
from _common import free_port
from cluster_faults import Line, Pair
from cluster_load import engine_binary, process, run_load

from chatsh.cluster.groups import group_of, prefixes
from chatsh.protocol import name_skeleton

CLIENTS, MESSAGES = 100, 500
SLOTS = 16384
IDLE = 1.0
"""Seconds each shard's idle CPU is measured over, before each run."""


def cpu_us(pid: int) -> float:
    """CPU time a process has had, in µs, from the scheduler's own count (in ns: a
    shard spends too little per delivery for the 10 ms ticks of /proc/PID/stat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1000


def cluster_port() -> int:
    """A free port whose cluster bus (10,000 higher) can exist: at most 55535."""
    while (port := free_port()) > 55535:
        pass
    return port


def shard_command(port: int, folder: Path) -> list[str]:
    """A shard of a cluster that keeps serving while another shard is down."""
    return [engine_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(folder), "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
            "--cluster-require-full-coverage", "no"]


def form(stack: ExitStack, workdir: Path, count: int) -> list[tuple[int, int]]:
    """``count`` shards (port, pid), the slots shared out, met into one cluster."""
    shards = []
    for index in range(count):
        folder = workdir / f"k{count}-{index}"
        folder.mkdir()
        port = cluster_port()
        proc = stack.enter_context(process(shard_command(port, folder), port))
        shards.append((port, proc.pid))
    clients = [redis.Redis(port=port) for port, _ in shards]
    size = SLOTS // count
    for index, client in enumerate(clients):
        last = SLOTS - 1 if index == count - 1 else (index + 1) * size - 1
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * size, last)
    for port, _ in shards[1:]:
        clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
    while not all(b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")
                  for client in clients):
        time.sleep(0.05)
    time.sleep(1)  # every shard to know every slot's owner
    return shards


def run(ports: list[int], shard_pids: list[int], targets: list[int] | None
        ) -> tuple[float, list[float], str]:
    """deliveries/s, each shard's CPU µs per delivery, and what was lost ('' if none).

    A shard's CPU while idle for a second first (its cron, the cluster bus, the nodes'
    heartbeats) is taken off, in proportion to the run's time, so what is left is what
    the deliveries cost it."""
    idle = [cpu_us(pid) for pid in shard_pids]
    time.sleep(IDLE)
    before = [cpu_us(pid) for pid in shard_pids]
    idle_rate = [(b - a) / IDLE for a, b in zip(idle, before, strict=True)]
    start = time.monotonic()
    totals = asyncio.run(run_load(ports, "flood", CLIENTS, MESSAGES, targets))
    after = [cpu_us(pid) for pid in shard_pids]
    took = time.monotonic() - start
    count = totals["expected"]
    lost = count - len(totals["latencies"])
    unacked = count - totals["ok"]
    problem = f"LOST {lost}, unacknowledged {unacked}" if lost or unacked else ""
    return (count / totals["elapsed"],
            [max(b - a - rate * took, 0.0) / count
             for a, b, rate in zip(before, after, idle_rate, strict=True)], problem)


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    print(f"{'shards':>6}  {'deliveries/s':>12}  busiest shard µs  mean µs  balance  lost")
    busiest_at: dict[int, float] = {}
    for count in (1, 2, 4):
        with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
            shards = form(stack, Path(workdir), count)
            ports = []
            for index in range(3):
                port = free_port()
                stack.enter_context(process(
                    [sys.executable, "-m", "chatsh", "serve", "--port", str(port),
                     "--max-clients", "2000", "--cluster",
                     f"redis+cluster://127.0.0.1:{shards[index % count][0]}",
                     "--node", f"n{index}", "--groups", str(count)], port))
                ports.append(port)
            pids = [pid for _, pid in shards]
            best = max((run(ports, pids, None) for _ in range(3)), key=lambda r: r[0])
            rate, per_shard, problem = best
            busiest, mean = max(per_shard), sum(per_shard) / count
            busiest_at[count] = busiest
            print(f"{count:>6}  {rate:>12,.0f}  {busiest:>16.2f}  {mean:>7.2f}  "
                  f"{busiest / mean:>7.2f}  {problem or 'none'}", flush=True)
            if count == 4:
                bystander(ports, pids)
                slot_migration(ports, shards)
                shard_failover(stack, Path(workdir), ports, shards)
                dead_shard(stack, Path(workdir), ports, shards)
    print(f"busiest shard at 4 shards over 1: {busiest_at[4] / busiest_at[1]:.2f} "
          "(goal <= 0.6)")


def bystander(ports: list[int], pids: list[int]) -> None:
    """Every message to a user of group 0 (a route touches only its recipient's group):
    the shards of the other groups hold no end of any delivery."""
    groups = [group_of(name_skeleton(f"u{i}"), 4) for i in range(CLIENTS)]
    ours = [i for i in range(CLIENTS) if groups[i] == 0]
    targets = [ours[(ours.index(i) + 1) % len(ours)] if i in ours else ours[i % len(ours)]
               for i in range(CLIENTS)]
    _, per_shard, problem = run(ports, pids, targets)
    print(f"all to group 0 ({len(ours)} of {CLIENTS} users): µs per delivery by shard "
          f"{', '.join(f'{us:.2f}' for us in per_shard)} (the shard of group 0 is the "
          f"busiest; goal for the others < 0.5); lost: {problem or 'none'}")


class Traffic:
    """One sender per group, each keeping one numbered message outstanding to a user of
    that group on another node."""

    def __init__(self, ports: list[int], tag: str) -> None:
        names = [f"{tag}{i}" for i in range(400)]
        self.pairs = []
        for group in range(4):
            sender, recipient = [name for name in names
                                 if group_of(name_skeleton(name), 4) == group][:2]
            self.pairs.append(Pair(Line(ports[group % 3], sender),
                                   Line(ports[(group + 1) % 3], recipient)))
        time.sleep(1.0)

    def acked(self, group: int) -> int:
        return len(self.pairs[group].acked)

    def back(self, group: int, since: float) -> float:
        """Seconds from ``since`` until the group's sender gets a new SEND-OK."""
        count = self.acked(group)
        while self.acked(group) <= count and time.monotonic() - since < 30:
            time.sleep(0.01)
        return time.monotonic() - since

    def verdict(self) -> str:
        """Stop; what every SEND-OK came to."""
        time.sleep(0.5)
        counts = [pair.settle() for pair in self.pairs]
        for pair in self.pairs:
            pair.sender.close()
            pair.recipient.close()
        lost, duplicates, unacknowledged = (sum(column) for column in zip(*counts,
                                                                            strict=True))
        return (f"SEND-OK never delivered {lost}, delivered twice {duplicates}, "
                f"delivered without SEND-OK {unacknowledged}")


def until(check: Callable[[], bool]) -> float:
    """Poll ``check`` until it holds; the moment it did."""
    while not check():
        time.sleep(0.02)
    return time.monotonic()


def writable(port: int, group: int) -> bool:
    """Whether the shard on ``port`` takes a write to ``group``'s slot."""
    try:
        with redis.Redis(port=port) as probe:
            probe.set(prefixes("chatsh", 4)[group] + ":probe", 1)
        return True
    except redis.RedisError:
        return False


def slot_migration(ports: list[int], shards: list[tuple[int, int]]) -> None:
    """Group 1's slot moves from its shard to shard 0 under traffic."""
    traffic = Traffic(ports, "m")
    tag = prefixes("chatsh", 4)[1].strip("{}")
    source, target = (redis.Redis(port=shards[index][0]) for index in (1, 0))
    slot = source.cluster("KEYSLOT", tag)
    source_id, target_id = (engine.cluster("MYID").decode() for engine in (source, target))
    target.cluster("SETSLOT", slot, "IMPORTING", source_id)
    source.cluster("SETSLOT", slot, "MIGRATING", target_id)
    keys = source.cluster("GETKEYSINSLOT", slot, 1000)
    source.execute_command("MIGRATE", "127.0.0.1", shards[0][0], "", 0, 5000, "KEYS", *keys)
    for port, _ in shards:
        with redis.Redis(port=port) as engine:
            engine.cluster("SETSLOT", slot, "NODE", target_id)
    back = traffic.back(1, time.monotonic())
    print(f"group 1's slot moved to another shard under traffic: its SEND-OK back "
          f"{back:.2f} s after the move; {traffic.verdict()}", flush=True)


def shard_failover(stack: ExitStack, workdir: Path, ports: list[int],
                   shards: list[tuple[int, int]]) -> None:
    """A replica for the shard of group 2, then ``CLUSTER FAILOVER`` under traffic."""
    primary = redis.Redis(port=shards[2][0])
    folder = workdir / "k4-replica"
    folder.mkdir()
    port = cluster_port()
    stack.enter_context(process(shard_command(port, folder), port))
    replica = redis.Redis(port=port)
    replica.cluster("MEET", "127.0.0.1", shards[0][0])
    until(lambda: primary.cluster("MYID").decode() in str(replica.cluster("NODES")))
    replica.cluster("REPLICATE", primary.cluster("MYID").decode())
    until(lambda: replica.info("replication").get("master_link_status") == "up")
    traffic = Traffic(ports, "f")
    replica.cluster("FAILOVER")
    promoted = until(lambda: replica.info("replication").get("role") == "master")
    back = traffic.back(2, promoted)
    print(f"the replica of group 2's shard took over (CLUSTER FAILOVER) under traffic: "
          f"its SEND-OK back {back:.2f} s after; {traffic.verdict()}", flush=True)


def dead_shard(stack: ExitStack, workdir: Path, ports: list[int],
               shards: list[tuple[int, int]]) -> None:
    """Kill the shard of group 3 under traffic and start it again, empty."""
    port, pid = shards[3]
    traffic = Traffic(ports, "d")
    live = (0, 1, 2)
    before = sum(traffic.acked(group) for group in live)
    os.kill(pid, signal.SIGKILL)
    outage = 3.0  # more than two heartbeats of the default 5 s lease
    time.sleep(outage)
    during = sum(traffic.acked(group) for group in live) - before
    stack.enter_context(process(shard_command(port, workdir / "k4-3"), port))
    started = time.monotonic()
    serving = until(lambda: writable(port, 3))
    back = traffic.back(3, serving)
    print(f"shard of group 3 killed for {outage:.0f} s: the other groups' three senders "
          f"got {before} SEND-OK in the second before and {during} in the {outage:.0f} s "
          f"after; its group's sender {traffic.pairs[3].refused} refusals; restarted, it "
          f"took writes {serving - started:.2f} s later and its group's SEND-OK was back "
          f"{back:.2f} s after that; {traffic.verdict()}", flush=True)

if __name__ == "__main__":
    main()
