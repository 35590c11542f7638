"""The server's bounds on a connection that has not logged in: its deadline covers every
wait, over real sockets on 127.0.0.1."""

import asyncio
import socket
import struct
import time

import pytest
from conftest import DEADLINE, RawClient

from chatsh.backplane import Claim, LocalBackplane
from chatsh.embedded import EmbeddedServer
from chatsh.server import ServerConfig

TCP_ESTABLISHED = 1


def still_connected(sock: socket.socket) -> bool:
    """Whether the server has sent neither FIN nor RST, seen without reading a byte (the
    kernel's TCP state of our end)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return struct.unpack("B", info[:1])[0] == TCP_ESTABLISHED


def wait_for_close(client: RawClient, within: float) -> float:
    """Seconds until the server ends ``client``'s connection, which never reads; fails
    after ``within``."""
    start = time.monotonic()
    while still_connected(client.sock):
        assert time.monotonic() - start < within, "the connection outlived its deadline"
        time.sleep(0.01)
    return time.monotonic() - start


def flood(client: RawClient, data: bytes, seconds: float) -> int:
    """Write as much of ``data`` as the server takes within ``seconds``; bytes written."""
    client.sock.settimeout(seconds)
    sent = 0
    try:
        while sent < len(data):
            sent += client.sock.send(data[sent:sent + 65536])
    except OSError:  # TimeoutError once the server stops reading, or a reset
        pass
    return sent


needs_tcp_info = pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="needs TCP_INFO")


@needs_tcp_info
def test_refusals_a_client_never_reads_do_not_outlive_the_login_deadline(server_factory):
    """Before: the server waited in drain() for the refusals to be read, outside the
    deadline, and the connection stayed open holding over a mebibyte of replies."""
    server = server_factory(handshake_timeout=1.0)
    attacker = RawClient(server.port)
    attacker.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood(attacker, b"HELLO-FROM a!b\n" * 300_000, seconds=0.5)
    wait_for_close(attacker, within=2.5)


class HangingClaims(LocalBackplane):
    """A backplane whose engine never answers a claim."""

    async def claim(self, name: str) -> Claim:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@needs_tcp_info
def test_a_claim_that_never_returns_counts_against_the_login_deadline():
    server = EmbeddedServer(ServerConfig(handshake_timeout=0.5),
                            backplane=HangingClaims()).start()
    try:
        client = RawClient(server.port)
        client.write(b"HELLO-FROM patient\n")
        wait_for_close(client, within=DEADLINE / 2)
        assert client.closed()
    finally:
        server.stop()
