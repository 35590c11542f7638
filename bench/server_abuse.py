"""Hostile clients must not hurt well-behaved ones.

100 well-behaved clients exchange messages (as in server_load.py) while hostile
clients, in another process, do all of this at once: a line of hundreds of MB
with no newline, senders that dribble one byte a second, eight users that never
read while others send to them, hundreds of connections opened and dropped,
garbage before HELLO-FROM and a second HELLO-FROM after login, refused logins
with 16 MiB names, and 600 connections from 60 addresses that never log in.
We report the well-behaved clients' throughput and p99 latency next to the same
load without the abuse (median of three rounds each), the slowest of a fresh
login every half second during the abuse, and the server's peak RSS.

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


async def sleeper_and_feeder(port: int, index: int) -> None:
    body = b"z" * 60000
    while True:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"HELLO-FROM sleeper%d\n" % index)  # and never reads again
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HELLO-FROM feeder%d\n" % index)
        await reader.readline()
        while True:
            writer.write(b"SEND sleeper%d " % index + body + b"\n")
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


async def huge_names(port: int) -> None:
    name = b"n!" * (8 << 20)  # 16 MiB, refused
    while True:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HELLO-FROM " + name + b"\n")
        await writer.drain()
        await reader.read(100)
        writer.close()


async def silent_crowd(port: int) -> None:
    """600 connections from 60 loopback addresses that never say a word, renewed."""
    held = []
    while True:
        for index in range(600):
            try:
                held.append(await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(f"127.0.3.{index % 60 + 1}", 0)))
            except OSError:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        for _, writer in held:
            writer.transport.abort()
        held.clear()


async def abuse(port: int) -> None:
    await asyncio.gather(huge_line(port), churn(port), garbage(port), huge_names(port),
                         silent_crowd(port), *(sleeper_and_feeder(port, i) for i in range(8)),
                         *(dribble(port, i) for i in range(20)), return_exceptions=True)


def slowest_login(port: int, stop: float) -> float:
    """The longest a fresh login (from its own address) takes, trying every 0.5 s."""
    worst, index = 0.0, 0
    while time.monotonic() < stop:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10,
                                      source_address=("127.0.0.9", 0)) as sock:
            sock.sendall(b"HELLO-FROM probe%d\n" % index)
            reply = sock.recv(100)
        assert reply.startswith(b"HELLO probe"), reply
        worst = max(worst, time.monotonic() - start)
        index += 1
        time.sleep(0.5)
    return worst


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
            login = slowest_login(port, time.monotonic() + 10)
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
    print(f"  slowest fresh login during the abuse (every 0.5 s for 10 s): {login * 1000:.0f} ms")
    print(f"  server RSS: {calm_rss / 1024:.0f} MiB calm, peak {peak / 1024:.0f} MiB, "
          f"{after / 1024:.0f} MiB after the abusers left")


if __name__ == "__main__":
    main()
