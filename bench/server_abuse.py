"""Hostile clients must not hurt well-behaved ones.

100 well-behaved clients exchange messages (as in server_load.py) while hostile
clients, in another process, do all of this at once: a line of hundreds of MB
with no newline, senders that dribble one byte a second, a user that never
reads while another sends to it, hundreds of connections opened and dropped,
garbage before HELLO-FROM and a second HELLO-FROM after login. We report the
well-behaved clients' throughput and p99 latency next to the same load without
the abuse (median of three rounds each), and the server's peak RSS.

    python bench/server_abuse.py
"""

from __future__ import annotations

import asyncio
import random
import socket
import statistics
import subprocess
import sys
import time

from _common import chatsh_server, env, peak_rss_kib, rss_kib
from server_load import run_load

CLIENTS, MESSAGES, ROUNDS = 100, 200, 3


async def huge_line(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"HELLO-FROM huge\n")
    chunk = b"y" * (1 << 20)
    while True:
        writer.write(b"SEND echobot ")
        for _ in range(300):  # 300 MiB, no newline
            writer.write(chunk)
            await writer.drain()
        writer.write(b"\n")


async def dribble(port: int, index: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for byte in b"HELLO-FROM slow%d\nSEND echobot s l o w\n" % index:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1)


async def sleeper_and_feeder(port: int) -> None:
    body = b"z" * 60000
    while True:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"HELLO-FROM sleeper\n")  # and never reads again
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HELLO-FROM feeder\n")
        await reader.readline()
        while True:
            writer.write(b"SEND sleeper " + body + b"\n")
            if await reader.readline() != b"SEND-OK\n":
                break
        writer.close()
        sock.close()
        await asyncio.sleep(0.2)


async def churn(port: int) -> None:
    while True:
        for _ in range(20):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            writer.write(b"HELLO-FROM churn" if random.random() < 0.5 else b"")
            writer.transport.abort()
        await asyncio.sleep(0.1)


async def garbage(port: int) -> None:
    rng = random.Random(3)
    while True:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(bytes(rng.randrange(256) for _ in range(200)) + b"\n")
        await reader.read(100)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HELLO-FROM twice\nHELLO-FROM twice\n")
        await reader.readline()
        await reader.readline()
        writer.close()
        await asyncio.sleep(0.05)


async def abuse(port: int) -> None:
    await asyncio.gather(huge_line(port), sleeper_and_feeder(port), churn(port), garbage(port),
                         *(dribble(port, i) for i in range(20)), return_exceptions=True)


def measure(port: int) -> tuple[float, float]:
    rates, p99s = [], []
    for _ in range(ROUNDS):
        elapsed, latencies = asyncio.run(run_load(port, CLIENTS, MESSAGES))
        ms = sorted(value / 1e6 for value in latencies)
        rates.append(CLIENTS * MESSAGES / elapsed)
        p99s.append(ms[int(len(ms) * 0.99) - 1])
    return statistics.median(rates), statistics.median(p99s)


def main() -> None:
    if sys.argv[1:2] == ["--abuse"]:
        asyncio.run(abuse(int(sys.argv[2])))
        return
    with chatsh_server("--max-clients", "1000") as (port, server):
        calm_rate, calm_p99 = measure(port)
        calm_rss = rss_kib(server.pid)
        abuser = subprocess.Popen([sys.executable, __file__, "--abuse", str(port)], env=env(),
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(2)
            rate, p99 = measure(port)
        finally:
            abuser.kill()
            abuser.wait()
        peak = peak_rss_kib(server.pid)
        time.sleep(1)
        after = rss_kib(server.pid)
    print(f"{CLIENTS} well-behaved clients x {MESSAGES} messages, median of {ROUNDS} rounds")
    print(f"  without abuse: {calm_rate:9.0f} msg/s  p99 {calm_p99:6.1f} ms")
    print(f"  with abuse:    {rate:9.0f} msg/s  p99 {p99:6.1f} ms   "
          f"throughput ratio {rate / calm_rate:.2f}")
    print(f"  server RSS: {calm_rss / 1024:.0f} MiB calm, peak {peak / 1024:.0f} MiB, "
          f"{after / 1024:.0f} MiB after the abusers left")


if __name__ == "__main__":
    main()
