"""`chatsh conform`: every case passes on good servers and fails on a broken one."""

import json
import subprocess

import pytest
from broken_server import BrokenServer
from conftest import CHATSH, chatsh_env

from chatsh.conform import stream_cases  # noqa: F401
from chatsh.conform.cases import CASES, Context
from chatsh.conform.runner import run_case

FAULTS = {
    "handshake.accepted": "hello-wrong-name",
    "handshake.in-use": "dup-names",
    **{f"handshake.disallowed-{label}": f"allow:{char}" for char, label in [
        ("!", "bang"), ("@", "at"), ("#", "hash"), ("$", "dollar"), ("%", "percent"),
        ("^", "caret"), ("&", "ampersand"), ("*", "star"), (",", "comma"), (" ", "space")]},
    "handshake.empty-name": "allow-empty",
    "handshake.not-hello-first": "hdr-as-body",
    "handshake.busy": "no-busy",
    "names.invisible": "allow-invisible",
    "names.too-long": "no-length-cap",
    "names.look-alike": "exact-names-only",
    "list.self-and-echobot": "list-no-echobot",
    "list.format": "list-spaces",
    "list.updates": "never-forget",
    "send.delivered": "no-send-ok",
    "send.text-intact": "squash-spaces",
    "send.bad-dest": "ok-unknown-dest",
    "send.malformed": "malformed-as-hdr",
    "send.to-self": "no-self-delivery",
    "send.echobot": "echo-before-ok",
    "framing.one-byte-writes": "chunk-is-line",
    "framing.pipelined": "first-line-only",
    "framing.utf8-split": "decode-per-chunk",
    "framing.one-mib": "cap-512k",
    "framing.sixteen-mib": "cap-8m",
    "errors.unknown-header": "unknown-closes",
    "lifecycle.freed-clean": "forget-on-reset-only",
    "lifecycle.freed-abrupt": "forget-on-clean-only",
    "concurrency.fifty-clients": "misroute-tenth",
}


def test_every_case_has_a_fault():
    """The two-node cases fail on two separate servers instead (tests/test_cluster.py)."""
    assert sorted(FAULTS) == sorted(c.id for c in CASES if not c.peer)


def conform(port, *args):
    return subprocess.run([CHATSH, "conform", "--port", str(port),
                           "--timeout", "3", *args],
                          capture_output=True, timeout=300, env=chatsh_env())


def test_our_server_passes_every_case(server_factory):
    server = server_factory(max_clients=60)
    result = conform(server.port, "--max-clients", "60")
    out = result.stdout.decode()
    assert result.returncode == 0, out
    alone = [c for c in CASES if not c.peer]
    assert out.splitlines()[-1] == f"{len(alone)} passed, 0 failed, 0 skipped"


def test_json_output_and_skip(server):
    result = conform(server.port, "--json", "-k", "handshake")
    report = json.loads(result.stdout)
    assert result.returncode == 0
    outcomes = {c["id"]: c["result"] for c in report["cases"]}
    assert outcomes["handshake.busy"] == "skip"
    assert report["failed"] == 0 and report["passed"] == len(outcomes) - 1


@pytest.fixture(scope="module")
def reference():
    server = BrokenServer(max_clients=60)
    yield server
    server.stop()


def test_the_reference_test_server_passes_every_case(reference):
    ctx = Context("127.0.0.1", reference.port, 3.0, max_clients=60)
    failed = [(c.id, o.expected, o.got) for c in CASES
              if (o := run_case(c, ctx)).result != "pass"]
    assert failed == []


@pytest.mark.parametrize("case_id", sorted(FAULTS))
def test_each_case_fails_on_its_broken_server(case_id):
    server = BrokenServer(FAULTS[case_id], max_clients=60)
    try:
        item = next(c for c in CASES if c.id == case_id)
        outcome = run_case(item, Context("127.0.0.1", server.port, 1.5, max_clients=60))
    finally:
        server.stop()
    assert outcome.result == "fail", f"{case_id} passed against a server with {FAULTS[case_id]}"
    assert outcome.expected and outcome.got


def test_failure_report_shows_escaped_lines(server_factory):
    broken = BrokenServer("hello-wrong-name")
    try:
        result = conform(broken.port, "-k", "handshake.accepted")
    finally:
        broken.stop()
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "FAIL" in out and "expected: HELLO cf" in out and "got:      HELLO cf" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed, 0 skipped"


def test_nothing_listening_fails_cleanly():
    import socket
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    result = conform(port, "-k", "send.echobot")
    assert result.returncode == 1
    assert b"cannot connect" in result.stdout
    assert b"Traceback" not in result.stderr
