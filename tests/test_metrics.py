"""--metrics HOST:PORT: Prometheus' text format at /metrics, counted as the server serves,
and /healthz (503 while the cluster engine is out of reach)."""

from __future__ import annotations

import asyncio
import http.client
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from certificates import make_certificates
from cluster import Node, wait_for
from conftest import CHATSH, DEADLINE, RawClient, chatsh_env
from prometheus_client.parser import text_string_to_metric_families
from served import Served

from chatsh.serving import metrics
from chatsh.serving.metrics import MetricsEndpoint, Sources
from chatsh.serving.stats import ServerStats

WATCHING = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


def metrics_port(served: Served) -> int:
    served.wait_logged("metrics on http://")
    found = [WATCHING.search(line) for line in served.log]
    return int(next(match[1] for match in found if match))


def get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def samples(port: int) -> dict[str, float]:
    """Every sample of a scrape, parsed by prometheus_client's own parser, by its name and
    labels as the text shows them."""
    status, text = get(port, "/metrics")
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def test_metrics_parse_and_move_with_a_scripted_session():
    served = Served("--metrics", "127.0.0.1:0")
    try:
        port = metrics_port(served)
        before = samples(port)
        assert before["chatsh_users_online"] == 0
        assert before['chatsh_logins_total{outcome="ok"}'] == 0
        held = RawClient(served.port)
        assert held.login("bob") == b"HELLO bob"
        script = subprocess.run(
            [CHATSH, "--port", str(served.port), "--user", "ann", "-c", "@echobot hi",
             "-c", "@bob hello", "-c", "@nobody x", "-c", "!who"],
            capture_output=True, text=True, timeout=60, env=chatsh_env())
        assert script.returncode == 0, script.stderr
        assert RawClient(served.port).login("bob") == b"IN-USE"
        after = samples(port)
    finally:
        assert served.stop() == 0
    assert after["chatsh_users_online"] == 1  # bob is still there
    assert after['chatsh_logins_total{outcome="ok"}'] == 2
    assert after['chatsh_logins_total{outcome="in_use"}'] == 1
    assert after['chatsh_requests_total{kind="send"}'] == 3
    assert after['chatsh_requests_total{kind="list"}'] >= 1
    assert after["chatsh_deliveries_total"] == 2  # echobot's and bob's, not nobody's
    assert after["chatsh_received_bytes_total"] > len(b"SEND bob hello\n")
    assert after["chatsh_sent_bytes_total"] > len(b"DELIVERY ann hello\n")
    assert after['chatsh_refusals_total{reason="address"}'] == 0
    assert after["process_cpu_seconds_total"] > 0


def test_refusals_and_waiting_connections_show_in_the_metrics():
    served = Served("--metrics", "127.0.0.1:0", "--allow", "127.0.0.2")
    try:
        port = metrics_port(served)
        assert RawClient(served.port, source="127.0.0.3").closed()
        waiting = RawClient(served.port, source="127.0.0.2")
        wait_for(lambda: samples(port)["chatsh_connections_waiting_login"] == 1,
                 "the waiting connection to be counted")
        assert samples(port)['chatsh_refusals_total{reason="address"}'] == 1
        waiting.close()
    finally:
        assert served.stop() == 0


@pytest.mark.parametrize("hello", [b"", b"\x16\x03\x01\x02\x00\x01"])
def test_a_client_gone_before_the_tls_handshake_is_a_refusal_not_a_waiting_login(
        tmp_path, hello):
    """On uvloop, a client that closed before its TLS handshake was done got a closed TLS
    transport as if the handshake had worked: it was counted as waiting to log in for
    good (after its login deadline too), and held about 48 KiB (8,000 of them: 26 ->
    408 MiB)."""
    certs = make_certificates(tmp_path / "pki")
    served = Served("--metrics", "127.0.0.1:0", "--tls-cert", str(certs.cert_file),
                    "--tls-key", str(certs.key_file))
    try:
        port = metrics_port(served)
        for _ in range(3):
            client = socket.create_connection(("127.0.0.1", served.port))
            client.sendall(hello)
            client.close()
        wait_for(lambda: samples(port)['chatsh_refusals_total{reason="tls_handshake"}'] == 3,
                 "three failed handshakes")
        wait_for(lambda: samples(port)["chatsh_connections_waiting_login"] == 0,
                 "nobody waiting to log in")
    finally:
        assert served.stop() == 0


def test_healthz_turns_503_while_the_engine_is_out_of_reach(engine):
    node = Node(engine, "a", "--metrics", "127.0.0.1:0", "--lease", "1")
    try:
        port = metrics_port(node)
        assert get(port, "/healthz") == (200, "ok\n")
        cluster = samples(port)
        assert cluster["chatsh_cluster_groups_reached"] == cluster["chatsh_cluster_groups"] == 1
        assert 0 <= cluster["chatsh_cluster_lease_age_seconds"] < 5
        assert cluster["chatsh_cluster_engine_call_seconds_count"] > 0
        assert cluster['chatsh_cluster_engine_call_seconds_bucket{le="+Inf"}'] == (
            cluster["chatsh_cluster_engine_call_seconds_count"])
        engine.kill()
        wait_for(lambda: get(port, "/healthz")[0] == 503, "/healthz to say 503")
        assert get(port, "/healthz") == (503, "the cluster engine is out of reach\n")
        assert samples(port)["chatsh_cluster_groups_reached"] == 0
        engine.start(same_port=True)
        wait_for(lambda: get(port, "/healthz")[0] == 200, "/healthz to say 200 again")
    finally:
        node.stop()


def test_the_server_does_not_import_prometheus_client_without_metrics():
    """The library is imported with --metrics alone: a server without it pays nothing."""
    check = subprocess.run([sys.executable, "-c", (
        "import sys, chatsh.cli, chatsh.modes.serve, chatsh.server, chatsh.embedded;"
        "print('prometheus_client' in sys.modules)")], capture_output=True, text=True,
        env=chatsh_env(), timeout=60)
    assert check.stdout.strip() == "False", check.stderr


def test_a_metrics_address_in_use_is_one_line_and_exit_2():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        where = f"127.0.0.1:{taken.getsockname()[1]}"
        run = subprocess.run([CHATSH, "serve", "--port", "0", "--metrics", where],
                             capture_output=True, text=True, timeout=60, env=chatsh_env())
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"chatsh serve: cannot serve metrics on {where}: Address already in use"]


# --- the endpoint on its own ------------------------------------------------------


@pytest.fixture
def endpoint():
    """A MetricsEndpoint on a loop of its own in this thread's reach."""
    loop = asyncio.new_event_loop()
    trouble: list[str] = []
    served = MetricsEndpoint(Sources(ServerStats(), lambda: 3, lambda: 0,
                                     lambda: trouble[-1] if trouble else None))
    port = loop.run_until_complete(served.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port, trouble
    loop.call_soon_threadsafe(loop.stop)
    thread.join(DEADLINE)
    loop.run_until_complete(served.stop())
    loop.close()


def test_the_endpoint_answers_only_its_two_paths(endpoint):
    port, trouble = endpoint
    assert get(port, "/metrics?x=1")[0] == 200
    assert get(port, "/nothing")[0] == 404
    assert get(port, "/metrics", "POST")[0] == 405
    trouble.append("draining")
    assert get(port, "/healthz") == (503, "draining\n")
    assert get(port, "/healthz", "HEAD") == (503, "")


def test_the_endpoint_bounds_what_a_client_can_hold(endpoint, monkeypatch):
    port, _ = endpoint
    monkeypatch.setattr(metrics, "REQUEST_TIMEOUT", 0.3)
    long_head = socket.create_connection(("127.0.0.1", port))
    long_head.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 20_000)
    assert _closed(long_head)
    silent = socket.create_connection(("127.0.0.1", port))  # (no request: its deadline)
    started = time.monotonic()
    assert _closed(silent)
    assert time.monotonic() - started < 3
    monkeypatch.setattr(metrics, "REQUEST_TIMEOUT", 30.0)
    crowd = [socket.create_connection(("127.0.0.1", port))
             for _ in range(metrics.MAX_CONNECTIONS)]
    for sock in crowd:
        sock.sendall(b"GET /heal")  # and no more: each holds a place until its deadline
    assert get(port, "/healthz") == (200, "ok\n")  # a quick request needs no place
    late = socket.create_connection(("127.0.0.1", port))
    late.sendall(b"GET /heal")
    assert _closed(crowd[0], 2.0)  # one slow client more: the oldest goes
    for sock in [*crowd, late]:
        sock.close()


def test_slow_clients_that_come_back_at_once_keep_no_health_check_out(endpoint):
    """Sixteen clients that each send half a request and connect again when they are
    closed held every place of the endpoint: one more connection was closed at once, so
    every health check failed (65 of 65 in 15 s) and an orchestrator would have taken the
    server for dead. A new connection now closes the oldest, so most checks get through
    (a check can still be the oldest when the crowd comes back: not every one)."""
    port, _ = endpoint
    stop = threading.Event()

    def hold() -> None:
        while not stop.is_set():
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"GET /heal")
                _closed(sock, 1.0)

    crowd = [threading.Thread(target=hold, daemon=True)
             for _ in range(2 * metrics.MAX_CONNECTIONS)]
    for thread in crowd:
        thread.start()
    try:
        time.sleep(0.5)
        checks = [_health(port) for _ in range(20)]
    finally:
        stop.set()
        for thread in crowd:
            thread.join(DEADLINE)
    assert checks.count(200) >= 10, checks


def _health(port: int) -> int | None:
    """The status of one /healthz, None when the connection was closed under it."""
    try:
        return get(port, "/healthz")[0]
    except ConnectionError:
        return None


def test_a_head_whose_lines_end_in_a_line_feed_alone_is_answered(endpoint):
    """'printf "GET /healthz HTTP/1.0\\n\\n" | nc' waited 5 s for a CR and got nothing."""
    port, _ = endpoint
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\nUser-Agent: nc\n\n")
        assert sock.recv(1 << 16).startswith(b"HTTP/1.1 200 OK\r\n")


def _closed(sock: socket.socket, timeout: float = DEADLINE) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 16):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    finally:
        sock.close()
    return True
