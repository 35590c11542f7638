"""Server throughput and latency: C clients each sending M messages to others.

For each client count C, every client logs in and pipelines its M messages to
random other clients; we time until every DELIVERY has arrived and take each
message's latency from the timestamp in its body. The same load runs against a
bare asyncio relay that moves the same bytes with no protocol checks (the
ceiling; like the server, it makes one write per connection for each read).
The server's RSS is read after each round, as clients come and go.

    python bench/server_load.py [C:M ...]      (default 10:2000 100:200 1000:20)
"""

from __future__ import annotations

import asyncio
import random
import resource
import statistics
import subprocess
import sys
import time

from _common import chatsh_server, env, free_port, rss_kib, wait_listening

RELAY = r"""
import asyncio, sys
writers = {}
async def serve(reader, writer):
    hello = await reader.readline()
    if not hello.startswith(b"HELLO-FROM "):
        return
    name = hello.split(b" ", 1)[1].strip()
    writers[name] = writer
    writer.write(b"HELLO " + name + b"\n")
    buffer = b""
    try:
        while data := await reader.read(262144):
            *lines, buffer = (buffer + data).split(b"\n")
            outbox = {}
            for line in lines:
                _, dest, rest = line.split(b" ", 2)
                outbox.setdefault(dest, []).append(b"DELIVERY " + name + b" " + rest + b"\n")
            for dest, chunks in outbox.items():
                writers[dest].write(b"".join(chunks))
            writer.write(b"SEND-OK\n" * len(lines))
    finally:
        writers.pop(name, None)
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), limit=1 << 20)
    await server.serve_forever()
asyncio.run(main())
"""


class LoadClient(asyncio.Protocol):
    def __init__(self, done: asyncio.Event, totals: dict) -> None:
        self.buffer = b""
        self.logged_in = asyncio.get_running_loop().create_future()
        self.done, self.totals = done, totals

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            self.line_received(line, now)

    def line_received(self, line: bytes, now: int) -> None:
        if line.startswith(b"DELIVERY "):
            stamp = int(line.rsplit(b" ", 1)[1])
            self.totals["latencies"].append(now - stamp)
            if len(self.totals["latencies"]) == self.totals["expected"]:
                self.done.set()
        elif line.startswith(b"HELLO ") and not self.logged_in.done():
            self.logged_in.set_result(None)


async def run_load(port: int, clients: int, messages: int) -> tuple[float, list[int]]:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    totals = {"latencies": [], "expected": clients * messages}
    conns = []
    for i in range(clients):
        _, proto = await loop.create_connection(lambda: LoadClient(done, totals),
                                                "127.0.0.1", port)
        proto.transport.write(b"HELLO-FROM u%d\n" % i)
        conns.append(proto)
    await asyncio.gather(*(c.logged_in for c in conns))
    rng = random.Random(7)
    start = time.perf_counter()
    for i, conn in enumerate(conns):
        lines = []
        for _ in range(messages):
            dest = rng.randrange(clients - 1)
            dest += dest >= i
            lines.append(b"SEND u%d load test message %d\n" % (dest, time.perf_counter_ns()))
        conn.transport.write(b"".join(lines))
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.transport.close()
    await asyncio.sleep(0.2)
    return elapsed, totals["latencies"]


def describe(elapsed: float, latencies: list[int], count: int) -> tuple[float, str]:
    ms = sorted(value / 1e6 for value in latencies)
    p99 = ms[int(len(ms) * 0.99) - 1]
    rate = count / elapsed
    return rate, f"{rate:>9.0f}/s  p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms"


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    rounds = [tuple(map(int, arg.split(":"))) for arg in sys.argv[1:]] or [
        (10, 2000), (100, 200), (1000, 20)]
    relay_port = free_port()
    relay = subprocess.Popen([sys.executable, "-c", RELAY, str(relay_port)], env=env())
    try:
        wait_listening(relay_port)
        with chatsh_server("--max-clients", "2000") as (port, server):
            print(f"{'C':>5} {'M':>5}  {'chatsh serve':<40} {'bare relay':<40} ratio  server RSS")
            for clients, messages in rounds:
                elapsed, lat = asyncio.run(run_load(port, clients, messages))
                relay_elapsed, relay_lat = asyncio.run(run_load(relay_port, clients, messages))
                count = clients * messages
                ours, ours_text = describe(elapsed, lat, count)
                ceiling, ceiling_text = describe(relay_elapsed, relay_lat, count)
                print(f"{clients:>5} {messages:>5}  {ours_text:<40} {ceiling_text:<40} "
                      f"{ours / ceiling:5.2f}  {rss_kib(server.pid) / 1024:6.1f} MiB")
            idle = rss_kib(server.pid) / 1024
            for _ in range(3):
                asyncio.run(run_load(port, 1000, 5))
            print(f"server RSS after three more rounds of 1000 clients coming and going: "
                  f"{rss_kib(server.pid) / 1024:.1f} MiB (was {idle:.1f} MiB)")
    finally:
        relay.terminate()
        relay.wait(10)


if __name__ == "__main__":
    main()
