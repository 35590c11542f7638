"""TLS on every side: the server's listeners, the shell and scripts, conform, and the
certificate read again on SIGHUP. Certificates come from trustme, made per test."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest
from certificates import Certificates, make_certificates
from conftest import CHATSH, DEADLINE, RawClient, chatsh_env
from served import Served

from chatsh.backplane import LocalBackplane
from chatsh.embedded import EmbeddedServer
from chatsh.engine import ClientEngine
from chatsh.protocol import Delivery, RawDelivery
from chatsh.server import ServerConfig
from chatsh.serving.tls import ServerTls
from chatsh.session import LoggedIn
from chatsh.tls import client_context


@pytest.fixture
def certs(tmp_path) -> Certificates:
    return make_certificates(tmp_path / "pki")


@pytest.fixture
def tls_server(certs):
    """The server with TLS on its one port, in this process."""
    server = EmbeddedServer(ServerConfig(), tls=ServerTls(str(certs.cert_file),
                                                          str(certs.key_file))).start()
    yield server
    server.stop()


def chatsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHATSH, *args], capture_output=True, text=True, timeout=60,
                          env=chatsh_env())


def tls_client(port: int, context: ssl.SSLContext, name: str = "localhost") -> RawClient:
    """A raw protocol client over TLS to 127.0.0.1, checking the certificate for ``name``."""
    client = RawClient(port)
    client.sock = context.wrap_socket(client.sock, server_hostname=name)
    return client


def test_a_tls_login_and_message_with_a_private_ca(tls_server, certs):
    run = chatsh("--host", "localhost", "--port", str(tls_server.port), "--tls-ca",
                 str(certs.ca_file), "--user", "ann", "-c", "@echobot over TLS", "-c", "!who")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "Successfully logged in as ann!", "The message was sent successfully",
        "From echobot: over TLS", "There are 2 online users:", "echobot", "ann"]


def test_a_wrong_host_name_is_refused_in_one_line(tls_server, certs):
    run = chatsh("--host", "127.0.0.1", "--port", str(tls_server.port), "--tls-ca",
                 str(certs.ca_file), "--user", "ann", "-c", "@echobot hi")
    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    assert f"127.0.0.1:{tls_server.port}" in line
    assert "certificate is not valid for '127.0.0.1'" in line


def test_an_untrusted_certificate_is_refused_in_one_line(tls_server):
    """--tls alone trusts the system's CAs, which did not sign the test's certificate."""
    run = chatsh("--host", "localhost", "--port", str(tls_server.port), "--tls",
                 "--user", "ann", "-c", "@echobot hi")
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert f"localhost:{tls_server.port}" in line
    assert "certificate verify failed: unable to get local issuer certificate" in line


def test_tls_to_a_plain_port_is_one_line_that_says_so(server, certs):
    run = chatsh("--host", "localhost", "--port", str(server.port), "--tls-ca",
                 str(certs.ca_file), "--user", "ann", "-c", "@echobot hi")
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert "is it a TLS port?" in line


def test_a_plain_client_at_the_tls_port_gets_no_byte_of_the_protocol(tls_server):
    client = RawClient(tls_server.port)
    client.write(b"HELLO-FROM ann\n")
    assert client.closed()
    assert client.lines == []


def test_plain_and_tls_listeners_side_by_side(certs):
    served = Served("--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                    "--tls-port", "0")
    try:
        assert served.tls_port and served.tls_port != served.port
        plain = RawClient(served.port)
        assert plain.login("bob") == b"HELLO bob"
        secure = tls_client(served.tls_port, certs.client_context())
        assert secure.login("ann") == b"HELLO ann"
        secure.write(b"SEND bob across\n")
        assert secure.read_line() == b"SEND-OK"
        assert plain.read_line() == b"DELIVERY ann across"
        with pytest.raises(ssl.SSLError):  # the plain port speaks no TLS
            tls_client(served.port, certs.client_context())
    finally:
        assert served.stop() == 0
    assert served.logged(f"listening on 127.0.0.1:{served.port} and "
                         f"127.0.0.1:{served.tls_port} with TLS")


def test_reading_and_writing_at_once_over_tls(tls_server, certs, tmp_path):
    """A script pipelines 40 messages of 256 KiB while the reader thread takes in their
    echoes: one TLS connection used by two threads at once."""
    body = "x" * (256 * 1024)
    script = tmp_path / "big.txt"
    script.write_text("ann\n" + "".join(f"@echobot {i}{body}\n" for i in range(40)))
    run = chatsh("--host", "localhost", "--port", str(tls_server.port), "--tls-ca",
                 str(certs.ca_file), "--script", str(script))
    assert run.returncode == 0, run.stderr
    echoes = [line for line in run.stdout.splitlines() if line.startswith("From echobot: ")]
    assert echoes == [f"From echobot: {i}{body}" for i in range(40)]


def test_the_client_never_calls_sendall_over_tls(tls_server, certs, monkeypatch):
    """RT2 holds over TLS: records leave through chatsh's own loop over send()."""
    def refuse(*args: object) -> None:
        raise AssertionError("sendall() called")

    monkeypatch.setattr(socket.socket, "sendall", refuse)
    monkeypatch.setattr(ssl.SSLSocket, "sendall", refuse)
    engine = ClientEngine("localhost", tls_server.port,
                          tls=client_context(str(certs.ca_file)))
    events: queue.Queue = queue.Queue()
    try:
        verdict = engine.log_in("ann", lambda batch: [events.put(e) for e in batch])
        assert isinstance(verdict, LoggedIn)
        engine.send_message("echobot", "y" * 3_000_000)
        assert engine.wait_idle(DEADLINE)
        while not isinstance(event := events.get(timeout=DEADLINE), RawDelivery):
            pass  # (a long printable body comes as bytes)
        assert event.decoded() == Delivery("echobot", "y" * 3_000_000)
    finally:
        engine.close()


def test_sighup_reloads_the_certificate_without_dropping_anyone(tmp_path):
    old = make_certificates(tmp_path / "old")
    served = Served("--tls-cert", str(old.cert_file), "--tls-key", str(old.key_file))
    try:
        alice = tls_client(served.port, old.client_context())
        assert alice.login("alice") == b"HELLO alice"
        new = make_certificates(tmp_path / "new")
        old.cert_file.write_bytes(new.cert_file.read_bytes())
        old.key_file.write_bytes(new.key_file.read_bytes())
        served.signal(signal.SIGHUP)
        served.wait_logged(f"reloaded the TLS certificate {old.cert_file}")
        bob = tls_client(served.port, new.client_context())
        assert bob.login("bob") == b"HELLO bob"
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_client(served.port, old.client_context())
        alice.write(b"SEND bob still here\n")  # on the connection made before the reload
        assert alice.read_line() == b"SEND-OK"
        assert bob.read_line() == b"DELIVERY alice still here"
    finally:
        assert served.stop() == 0


def test_sighup_with_a_broken_certificate_keeps_the_one_in_use(certs):
    served = Served("--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file))
    try:
        certs.cert_file.write_text("not a certificate\n")
        served.signal(signal.SIGHUP)
        served.wait_logged("kept the TLS certificate in use: cannot load the certificate")
        assert tls_client(served.port, certs.client_context()).login("ann") == b"HELLO ann"
    finally:
        assert served.stop() == 0


@pytest.mark.timeout(30)
def test_sighup_with_a_fifo_for_a_certificate_keeps_serving(certs):
    """A FIFO in the certificate's place (a secrets tool's, a mistake): reading it again on
    SIGHUP waited for a writer inside the event loop, so the whole server stopped, every
    user with it, until someone wrote to the FIFO."""
    served = Served("--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file))
    try:
        certs.cert_file.unlink()
        os.mkfifo(certs.cert_file)
        served.signal(signal.SIGHUP)
        served.wait_logged("kept the TLS certificate in use: cannot load the certificate")
        assert served.logged("not a regular file")
        assert tls_client(served.port, certs.client_context()).login("ann") == b"HELLO ann"
    finally:
        assert served.stop() == 0


def test_a_certificate_that_cannot_be_used_is_one_line(certs, tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(certs.key_file.read_bytes(), None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    for files, reason in (((str(tmp_path / "missing.pem"),), "No such file or directory"),
                          ((str(certs.ca_file),), "PEM lib"),
                          ((str(certs.cert_file), "--tls-key", str(locked)),
                           "the key is encrypted")):
        run = subprocess.run([CHATSH, "serve", "--port", "0", "--tls-cert", *files],
                             capture_output=True, text=True, timeout=60, env=chatsh_env(),
                             stdin=subprocess.DEVNULL)
        assert run.returncode == 2
        [line] = run.stderr.splitlines()
        assert "cannot load the certificate" in line and reason in line


def test_tls_options_that_do_not_go_together_are_usage_errors(certs):
    assert chatsh("serve", "--tls-port", "6000").returncode == 2
    assert "go with --tls-cert" in chatsh("serve", "--tls-key", "k.pem").stderr
    alone = chatsh("--tls", "-c", "!who")
    assert alone.returncode == 2 and "--tls needs a server" in alone.stderr
    missing = chatsh("--port", "1", "--tls-ca", str(certs.folder / "none.pem"), "-c", "!who")
    assert missing.returncode == 2
    assert missing.stderr.startswith("chatsh: cannot read the CA file")


def test_conform_over_tls(tls_server, certs):
    run = chatsh("conform", "--host", "localhost", "--port", str(tls_server.port),
                 "--tls-ca", str(certs.ca_file), "-k", "handshake", "-k", "send")
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 failed" in run.stdout.splitlines()[-1]


def test_conform_with_a_certificate_it_cannot_trust_is_one_line(tls_server):
    run = chatsh("conform", "--host", "localhost", "--port", str(tls_server.port), "--tls")
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"chatsh conform: TLS handshake with localhost:{tls_server.port} failed: certificate "
        "verify failed: unable to get local issuer certificate"]


class TlsProxy:
    """TLS in front of a plain engine (as a managed Redis with TLS is): each connection
    is passed on to 127.0.0.1:``target``; runs in a thread of its own."""

    def __init__(self, target: int, certs: Certificates) -> None:
        self.target = target
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certs.cert_file, certs.key_file)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(DEADLINE)

    def _run(self, started: threading.Event) -> None:
        server = self.loop.run_until_complete(asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.context))
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()
        server.close()
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)


@dataclass
class Url:
    url: str


def test_cluster_nodes_reach_their_engine_over_rediss(engine, certs):
    from cluster import Node

    proxy = TlsProxy(engine.port, certs)
    secure = Url(f"rediss://localhost:{proxy.port}/0?ssl_ca_certs={certs.ca_file}")
    nodes = []
    try:
        nodes += [Node(secure, "a"), Node(secure, "b")]
        alice, bob = RawClient(nodes[0].port), RawClient(nodes[1].port)
        assert alice.login("alice") == b"HELLO alice"
        assert bob.login("bob") == b"HELLO bob"
        alice.write(b"SEND bob through TLS\n")
        assert alice.read_line() == b"SEND-OK"
        assert bob.read_line() == b"DELIVERY alice through TLS"
        untrusted = subprocess.run(
            [CHATSH, "serve", "--port", "0", "--cluster", f"rediss://localhost:{proxy.port}/0",
             "--node", "c"], capture_output=True, text=True, timeout=60, env=chatsh_env())
        assert untrusted.returncode == 2
        [line] = untrusted.stderr.splitlines()
        assert "cannot reach the cluster engine" in line and "CERTIFICATE_VERIFY_FAILED" in line
    finally:
        for node in nodes:
            node.stop()
        proxy.stop()


@pytest.mark.parametrize("url", [
    "rediss+cluster://localhost:7000?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/etc/c.pem",
    "rediss+sentinel://localhost:26379/chat?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/etc/c.pem",
])
def test_a_private_ca_reaches_a_sharded_or_sentinel_engine_over_tls(url):
    """The ssl_* settings of a rediss:// URL hold for the cluster and sentinel forms too."""
    from chatsh.cluster.engines import engine_client

    client = engine_client(url)
    options = getattr(client, "connection_kwargs", None) or client.connection_pool.connection_kwargs
    assert options["ssl_ca_certs"] == "/etc/ca.pem"
    assert options["ssl_certfile"] == "/etc/c.pem"


def test_a_silent_connection_at_the_tls_port_is_closed_at_the_login_deadline(certs):
    """The handshake is the first wait of a connection and counts against its deadline."""
    with EmbeddedServer(ServerConfig(handshake_timeout=0.5),
                        tls=ServerTls(str(certs.cert_file), str(certs.key_file))) as server:
        silent = RawClient(server.port)
        assert silent.closed(timeout=5)


def test_sighup_without_tls_is_one_line_and_the_server_goes_on():
    """A supervisor's reload (SIGHUP) used to end a server that has no certificate."""
    served = Served()
    try:
        served.signal(signal.SIGHUP)
        served.wait_logged("SIGHUP: nothing to read again (no --tls-cert)")
        assert RawClient(served.port).login("ann") == b"HELLO ann"
    finally:
        assert served.stop() == 0


def test_cluster_nodes_speak_tls_to_their_clients(engine, certs):
    """A node takes the same TLS options: a user on a TLS node and one on a plain node
    of the same cluster talk."""
    from cluster import Node

    secure = Node(engine, "a", "--tls-cert", str(certs.cert_file), "--tls-key",
                  str(certs.key_file))
    plain = Node(engine, "b")
    try:
        ann = tls_client(secure.port, certs.client_context())
        assert ann.login("ann") == b"HELLO ann"
        bob = RawClient(plain.port)
        assert bob.login("bob") == b"HELLO bob"
        ann.write(b"SEND bob over TLS, then the engine\n")
        assert ann.read_line() == b"SEND-OK"
        assert bob.read_line() == b"DELIVERY ann over TLS, then the engine"
        assert secure.logged(f"listening on 127.0.0.1:{secure.port} with TLS")
    finally:
        secure.stop()
        plain.stop()


def test_a_client_hello_read_with_the_connection_goes_to_the_handshake(certs):
    """uvloop starts reading a connection as soon as it is made, whatever the protocol
    asked: a client hello read before the handshake began was taken for the protocol's
    bytes, and the handshake waited for good (one TLS login in three timed out). The
    handshake now starts while the connection is made, on either event loop."""
    served = Served("--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file))
    try:
        for index in range(20):
            client = tls_client(served.port, certs.client_context())
            assert client.login(f"u{index}") == f"HELLO u{index}".encode()
            client.close()
    finally:
        assert served.stop() == 0


@pytest.mark.parametrize("hello", [b"", b"\x16\x03\x01\x02\x00\x01", b"HELLO-FROM ann\n"])
@pytest.mark.parametrize("how", ["reset", "close"])
def test_a_failed_handshake_leaves_nothing_behind(certs, hello, how):
    """A failed handshake takes the connection's transport into the TLS layer, so
    asyncio never says the connection is gone: the server forgets it all the same, and
    its login deadline does not count it again later. A reset mid-handshake stayed
    counted as waiting to log in, and among the server's connections, for good."""
    config = ServerConfig(handshake_timeout=0.5)
    tls = ServerTls(str(certs.cert_file), str(certs.key_file))
    with EmbeddedServer(config, tls=tls) as server:
        for _ in range(3):
            client = RawClient(server.port)
            client.write(hello)
            if how == "reset":
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            client.sock.close()
        chat = server._server
        deadline = time.monotonic() + DEADLINE
        while chat.stats.refusals["tls_handshake"] < 3:
            assert time.monotonic() < deadline, chat.stats.refusals
            time.sleep(0.01)
        while len(chat.pending) or chat._sessions:
            assert time.monotonic() < deadline, (len(chat.pending), chat._sessions)
            time.sleep(0.01)
        time.sleep(2 * config.handshake_timeout)  # the deadline has nothing left to count
        assert chat.stats.refusals == {"tls_handshake": 3}


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_client_that_stalls_mid_handshake_is_closed_at_the_login_deadline(certs, loop):
    """Half a client hello, then nothing: the handshake waits, and the login deadline
    ends it, counted, on either event loop."""
    new_loop = pytest.importorskip("uvloop").new_event_loop if loop == "uvloop" else (
        asyncio.new_event_loop)
    hello = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO())
    with pytest.raises(ssl.SSLWantReadError):
        hello.do_handshake()
    first_flight = outgoing.read()
    with EmbeddedServer(ServerConfig(handshake_timeout=0.5), new_loop=new_loop,
                        tls=ServerTls(str(certs.cert_file), str(certs.key_file))) as server:
        stalled = RawClient(server.port)
        stalled.write(first_flight[:len(first_flight) // 2])
        assert stalled.closed(timeout=5)
        assert server._server.stats.refusals["login_deadline"] == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_clients_gone_before_the_handshake_are_forgotten_by_the_deadline(certs, loop):
    """uvloop reads a connection before the TLS layer has started its handshake: a client
    that closes at once leaves that layer waiting for a handshake that never comes, and
    nobody told the server the connection is gone. 2 of 3 such connections stayed counted
    as waiting to log in, and among the server's connections, for good; the login
    deadline now forgets them."""
    new_loop = pytest.importorskip("uvloop").new_event_loop if loop == "uvloop" else (
        asyncio.new_event_loop)
    config = ServerConfig(handshake_timeout=0.5)
    tls = ServerTls(str(certs.cert_file), str(certs.key_file))
    with EmbeddedServer(config, tls=tls, new_loop=new_loop) as server:
        for _ in range(10):
            socket.create_connection(("127.0.0.1", server.port)).close()
        chat = server._server
        deadline = time.monotonic() + DEADLINE
        while len(chat.pending) or chat._sessions or sum(chat.stats.refusals.values()) < 10:
            assert time.monotonic() < deadline, (len(chat.pending), chat._sessions)
            time.sleep(0.01)
        assert sum(chat.stats.refusals.values()) == 10, chat.stats.refusals


class HeldListing(LocalBackplane):
    """A backplane whose user lists wait until the test lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.asked, self.answer = threading.Event(), threading.Event()

    async def names(self, limit: int) -> list[str] | None:
        self.asked.set()
        while not self.answer.is_set():
            await asyncio.sleep(0.01)
        return await super().names(limit)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_stop_waits_for_the_answer_a_tls_user_is_owed(certs, loop):
    """A connection past its TLS handshake is a user like any other at a stop: a request
    being answered when the stop begins is answered, then the connection closes (only a
    connection still in its handshake, with nothing read, is dropped at once)."""
    new_loop = pytest.importorskip("uvloop").new_event_loop if loop == "uvloop" else (
        asyncio.new_event_loop)
    backplane = HeldListing()
    with EmbeddedServer(ServerConfig(), backplane=backplane, new_loop=new_loop,
                        tls=ServerTls(str(certs.cert_file), str(certs.key_file))) as server:
        ann = tls_client(server.port, certs.client_context())
        assert ann.login("ann") == b"HELLO ann"
        ann.write(b"LIST\n")
        assert backplane.asked.wait(DEADLINE)
        stopping = asyncio.run_coroutine_threadsafe(server._server.drain(DEADLINE),
                                                    server._loop)
        backplane.answer.set()
        assert ann.read_line().startswith(b"LIST-OK echobot")
        assert ann.closed()
        stopping.result(DEADLINE)
