"""Who may connect: mutual TLS (--tls-client-ca) and --allow CIDR close everyone else
before a byte of the protocol, and every refusal is counted by its reason."""

from __future__ import annotations

import ssl
import subprocess
import time

import pytest
from certificates import Certificates, make_certificates
from conftest import CHATSH, DEADLINE, RawClient, chatsh_env
from served import Served
from test_tls import tls_client

from chatsh.embedded import EmbeddedServer
from chatsh.server import ServerConfig
from chatsh.serving.access import Allowed, network
from chatsh.serving.tls import ServerTls


@pytest.fixture
def certs(tmp_path) -> Certificates:
    return make_certificates(tmp_path / "pki")


@pytest.fixture
def mutual(certs):
    """The server with TLS on its one port, letting in clients certified by the CA."""
    server = EmbeddedServer(ServerConfig(), tls=ServerTls(
        str(certs.cert_file), str(certs.key_file), client_ca=str(certs.ca_file))).start()
    yield server
    server.stop()


def refusals(server: EmbeddedServer) -> dict[str, int]:
    return dict(server._server.stats.refusals)


def wait_for_count(server: EmbeddedServer, reason: str, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while refusals(server).get(reason, 0) < count:
        assert time.monotonic() < deadline, refusals(server)
        time.sleep(0.01)


def certified(certs: Certificates, name: str) -> ssl.SSLContext:
    context = certs.client_context()
    chain, key = certs.client(name)
    context.load_cert_chain(chain, key)
    return context


def test_mutual_tls_lets_a_certified_client_in(mutual, certs):
    client = tls_client(mutual.port, certified(certs, "ann"))
    assert client.login("ann") == b"HELLO ann"
    assert refusals(mutual) == {}


def test_mutual_tls_closes_a_client_without_a_certificate_before_any_line(mutual, certs):
    client = tls_client(mutual.port, certs.client_context())  # TLS 1.3: the client's side
    client.write(b"HELLO-FROM ann\n")                          # of the handshake is done
    assert client.read_line() is None
    assert client.lines == []
    wait_for_count(mutual, "client_certificate", 1)


def test_mutual_tls_closes_a_client_certified_by_another_ca(mutual, certs, tmp_path):
    stranger = certified(make_certificates(tmp_path / "other"), "eve")
    stranger.load_verify_locations(certs.ca_file)  # it trusts the server all the same
    client = tls_client(mutual.port, stranger)
    client.write(b"HELLO-FROM eve\n")
    assert client.read_line() is None
    assert client.lines == []
    wait_for_count(mutual, "client_certificate", 1)


def test_the_shell_shows_its_certificate_or_is_refused_in_one_line(mutual, certs):
    chain, key = certs.client("ann")
    common = [CHATSH, "--host", "localhost", "--port", str(mutual.port), "--tls-ca",
              str(certs.ca_file), "--user", "ann", "-c", "@echobot mutual"]
    shown = subprocess.run([*common, "--tls-cert", str(chain), "--tls-key", str(key)],
                           capture_output=True, text=True, timeout=60, env=chatsh_env())
    assert shown.returncode == 0, shown.stderr
    assert "From echobot: mutual" in shown.stdout
    hidden = subprocess.run(common, capture_output=True, text=True, timeout=60,
                            env=chatsh_env())
    assert hidden.returncode == 2
    assert hidden.stdout == ""
    assert hidden.stderr.splitlines() == [
        f"chatsh: Cannot connect to localhost:{mutual.port}: TLS: the server closed the "
        "connection after the handshake without a word (does it want a client certificate? "
        "--tls-cert FILE)"]


def test_allow_closes_an_address_outside_it_before_a_byte():
    served = Served("--allow", "127.0.0.2/32", "--allow", "10.0.0.0/8")
    try:
        inside = RawClient(served.port, source="127.0.0.2")
        assert inside.login("ann") == b"HELLO ann"
        outside = RawClient(served.port, source="127.0.0.3")
        outside.write(b"HELLO-FROM eve\n")
        assert outside.closed()
        assert outside.lines == []
        served.wait_logged("refused 127.0.0.3:")
    finally:
        assert served.stop() == 0
    assert not served.logged("connection from 127.0.0.3")


def test_refused_addresses_are_counted(server):
    server._server.door.allowed = Allowed([network("127.0.0.2")])
    for _ in range(3):
        assert RawClient(server.port).closed()
    assert RawClient(server.port, source="127.0.0.2").login("ann") == b"HELLO ann"
    assert refusals(server) == {"address": 3}


def test_every_kind_of_closing_before_a_login_is_counted(server_factory, certs):
    server = server_factory(max_pending=4, max_pending_per_address=4, pending_grace=0.0,
                            handshake_timeout=0.3, max_refusals=2)
    silent = [RawClient(server.port) for _ in range(5)]  # the fifth pushes out the first
    wait_for_count(server, "waiting_full", 1)
    wait_for_count(server, "login_deadline", 4)  # the others wait out their deadline
    stubborn = RawClient(server.port)
    stubborn.write(b"HELLO-FROM a,b\nHELLO-FROM c,d\n")
    assert stubborn.closed()
    wait_for_count(server, "refused_logins", 1)
    for client in silent:
        client.close()


@pytest.mark.parametrize(("allowed", "address", "admitted"), [
    (["10.0.0.0/8"], "10.1.2.3", True),
    (["10.0.0.0/8"], "11.1.2.3", False),
    (["10.1.2.3/8"], "10.200.0.1", True),  # host bits set: the block they are in
    (["10.0.0.0/8"], "::ffff:10.1.2.3", True),  # an IPv4 client on a dual-stack port
    (["2001:db8::/32"], "2001:db8::1", True),
    (["2001:db8::/32"], "2001:db9::1", False),
    (["127.0.0.1"], "127.0.0.1", True),
    (["127.0.0.1"], "not an address", False),
])
def test_allowed_addresses(allowed, address, admitted):
    assert Allowed([network(text) for text in allowed]).admits(address) is admitted


def test_a_bad_cidr_is_a_usage_error_in_one_line():
    run = subprocess.run([CHATSH, "serve", "--allow", "10.0.0.0/33"], capture_output=True,
                         text=True, timeout=60, env=chatsh_env())
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1] == (
        "chatsh serve: error: argument --allow: not an address or CIDR block: '10.0.0.0/33'")


CLOSED_AT_LOGIN = "The server closed the connection without answering the login"


def test_a_close_before_any_answer_is_no_refused_name_in_the_shell(server, term_factory):
    """A server that lets this address in no more (or a TLS port, or no chat server)
    closes before a byte: the shell said 'Connection to the server was lost.' and asked
    for 'another name:', as if the name had been refused, for every name typed."""
    server._server.door.allowed = Allowed([network("127.0.0.2")])
    term = term_factory("--port", str(server.port), "--user", "ann")
    term.wait_text(CLOSED_AT_LOGIN)
    term.wait_for(lambda screen: screen.rstrip().endswith("login:"), what="login: again")
    assert "another name" not in term.screen_text
    assert "Connection to the server was lost" not in term.screen_text
    server._server.door.allowed = None
    term.enter("ann")
    term.wait_text("Successfully logged in as ann!")


def test_a_close_before_any_answer_is_named_by_a_script(server):
    server._server.door.allowed = Allowed([network("127.0.0.2")])
    result = subprocess.run([CHATSH, "--port", str(server.port), "--user", "ann", "-c",
                             "@echobot hi"], capture_output=True, text=True, timeout=60,
                            env=chatsh_env())
    assert result.returncode == 1
    assert CLOSED_AT_LOGIN in result.stdout
    assert "Connection to the server was lost" not in result.stdout + result.stderr
