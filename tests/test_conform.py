"""`chatsh conform`: every case passes on good servers and fails on a broken one."""

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ElementTree
from dataclasses import replace

import pytest
from broken_server import HOSTILE, QUIRKS, BrokenServer
from conftest import CHATSH, chatsh_env

from chatsh.conform.cases import CASES, Context, Level
from chatsh.conform.probe import is_line, spelt
from chatsh.conform.runner import OLDER_VERSION, Outcome, run_all, run_case, select
from chatsh.words import OLDER, Word

FAULTS = {
    "handshake.accepted": "hello-wrong-name",
    "handshake.in-use": "dup-names",
    "handshake.retry-after-in-use": "deaf-after-refusal",
    **{f"handshake.disallowed-{label}": f"allow:{char}" for char, label in [
        ("!", "bang"), ("@", "at"), ("#", "hash"), ("$", "dollar"), ("%", "percent"),
        ("^", "caret"), ("&", "ampersand"), ("*", "star"), (",", "comma"), (" ", "space")]},
    "handshake.empty-name": "allow-empty",
    "handshake.not-hello-first": "hdr-as-body",
    "handshake.not-hello-first-closes": "open-after-bad-hdr",
    "handshake.hello-after-login": "hello-relogin",
    "handshake.busy": "no-busy",
    "names.invisible": "allow-invisible",
    "names.too-long": "no-length-cap",
    "names.look-alike": "exact-names-only",
    "list.self": "list-not-self",
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
ALONE = [c for c in CASES if not c.peer]
PROTOCOL = [c for c in ALONE if c.level is not Level.POLICY]


def test_every_case_has_a_fault():
    """The two-node cases fail on two separate servers instead (tests/test_cluster.py)."""
    assert sorted(FAULTS) == sorted(c.id for c in CASES if not c.peer)


def conform(port, *args, timeout="3"):
    return subprocess.run([CHATSH, "conform", "--port", str(port),
                           "--timeout", timeout, *args],
                          capture_output=True, timeout=300, env=chatsh_env())


def conform_broken(fault, *args, timeout="3"):
    """The console script's run against a BrokenServer with ``fault``."""
    broken = BrokenServer(fault)
    try:
        return conform(broken.port, *args, timeout=timeout)
    finally:
        broken.stop()


def outcome_on(fault, case_id, timeout=1.0, quirks=()):
    """The outcome of one case against a BrokenServer with ``fault``."""
    server = BrokenServer(fault, quirks=quirks)
    try:
        return run_case(next(c for c in CASES if c.id == case_id),
                        Context("127.0.0.1", server.port, timeout))
    finally:
        server.stop()


def test_our_server_passes_every_case_with_its_own_policies(server_factory):
    server = server_factory(max_clients=60, max_clients_per_address=60)  # all from 127.0.0.1
    result = conform(server.port, "--max-clients", "60", "--profile", "chatsh", "--strict")
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert out.splitlines()[-1] == f"{len(ALONE)} passed, 0 failed, 0 warnings, 0 skipped"


def test_policy_cases_run_only_in_the_chatsh_profile():
    assert {c.id for c in select(None)} == {c.id for c in PROTOCOL}
    assert {c.id for c in select(None, profile="chatsh")} == {c.id for c in ALONE}
    assert {c.id for c in ALONE if c.level is Level.POLICY} == {
        "names.invisible", "names.too-long", "names.look-alike"}


def test_json_output_and_skip(server):
    result = conform(server.port, "--json", "-k", "handshake")
    report = json.loads(result.stdout)
    assert result.returncode == 0
    outcomes = {c["id"]: c["result"] for c in report["cases"]}
    assert outcomes["handshake.busy"] == "skip"
    assert report["failed"] == 0 and report["passed"] == len(outcomes) - 1
    assert "names.too-long" not in outcomes  # a policy, not the protocol


@pytest.fixture(scope="module")
def reference():
    server = BrokenServer(max_clients=60)
    yield server
    server.stop()


def test_the_reference_test_server_passes_every_case(reference):
    ctx = Context("127.0.0.1", reference.port, 3.0, max_clients=60)
    failed = [(c.id, o.expected, o.got) for c in ALONE
              if (o := run_case(c, ctx, strict=True)).result not in ("pass", "skip")]
    assert failed == []


@pytest.mark.parametrize("quirk", [*QUIRKS, "capacity-10"])
def test_servers_with_what_the_protocol_allows_pass(quirk):
    """What real servers do and the protocol allows (each quirk alone) fails no case."""
    server = BrokenServer(max_clients=10 if quirk == "capacity-10" else 1000,
                          quirks=(quirk,) if quirk in QUIRKS else ())
    try:
        outcomes = list(run_all(PROTOCOL, Context("127.0.0.1", server.port, 2.0)))
    finally:
        server.stop()
    results = {o.id: o.result for o in outcomes}
    assert [o for o in outcomes if o.result in ("fail", "warn", "not run")] == []
    skipped = {o.id for o in outcomes if o.result == "skip"}
    assert skipped == {"handshake.busy", *(
        ["send.echobot"] if quirk == "no-echobot" else []), *(
        [] if quirk == "open-after-refusal" else ["handshake.retry-after-in-use"])}, results


def test_all_allowed_quirks_together_pass_through_the_console_script():
    server = BrokenServer(max_clients=10, quirks=QUIRKS)
    try:
        result = conform(server.port)
    finally:
        server.stop()
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert "(answered IN-USE; the connection stayed open)" in out
    assert "the server took 10 more users, then answered BUSY; checked with 10" in out
    assert "send.echobot" in out and "the server has no echobot" in out


@pytest.mark.parametrize(("fault", "failing"), [
    ("never-forget", {"list.updates", "lifecycle.freed-clean", "lifecycle.freed-abrupt"}),
    ("no-send-ok", None),
    ("allow:!@#$%^&*", {f"handshake.disallowed-{label}" for label in (
        "bang", "at", "hash", "dollar", "percent", "caret", "ampersand", "star")}),
    ("list-spaces", {"list.format"}),
])
@pytest.mark.timeout(120)
def test_a_plain_run_fails_a_server_that_breaks_the_protocol(fault, failing):
    server = BrokenServer(fault)
    try:
        result = conform(server.port, "--json", timeout="1")
    finally:
        server.stop()
    report = json.loads(result.stdout)
    assert result.returncode == 1
    failed = {c["id"] for c in report["cases"] if c["result"] == "fail"}
    if failing is None:
        assert {"send.delivered", "send.text-intact", "send.to-self"} <= failed
    else:
        assert failed == failing


@pytest.mark.parametrize("case_id", sorted(FAULTS))
def test_each_case_fails_on_its_broken_server(case_id):
    server = BrokenServer(FAULTS[case_id], max_clients=60)
    try:
        item = next(c for c in CASES if c.id == case_id)
        outcome = run_case(item, Context("127.0.0.1", server.port, 1.5, max_clients=60),
                           strict=True)
    finally:
        server.stop()
    assert outcome.result == "fail", f"{case_id} passed against a server with {FAULTS[case_id]}"
    assert outcome.expected and outcome.got


def test_failure_report_shows_escaped_lines(server_factory):
    result = conform_broken("hello-wrong-name", "-k", "handshake.accepted")
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "FAIL" in out and "expected: HELLO cf" in out and "got:      HELLO cf" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed, 0 warnings, 0 skipped"


def test_a_recommendation_missed_is_a_warning_and_fails_only_under_strict(tmp_path):
    broken = BrokenServer("open-after-bad-hdr")
    try:
        plain = conform(broken.port, "-k", "not-hello-first")
        strict = conform(broken.port, "-k", "not-hello-first", "--strict",
                         "--junit", str(tmp_path / "conform.xml"))
    finally:
        broken.stop()
    out = plain.stdout.decode()
    assert plain.returncode == 0, out
    assert "WARN" in out and "got:      answered BAD-RQST-HDR; the connection stayed open" in out
    assert out.splitlines()[-1] == "1 passed, 0 failed, 1 warnings, 0 skipped"
    assert strict.returncode == 1
    suite = ElementTree.parse(tmp_path / "conform.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='handshake.not-hello-first-closes']/failure")
    assert failure is not None and "stayed open" in failure.get("message")


def test_a_server_that_dies_is_reported_once_and_the_rest_not_run():
    result = conform_broken("dies-on-reset", "-k", "lifecycle", "-k", "concurrency")
    out = result.stdout.decode()
    assert result.returncode == 1
    assert out.count("the server stopped answering") == 1
    assert "concurrency" not in out
    assert out.splitlines()[-1] == "1 passed, 1 failed, 0 warnings, 0 skipped, 1 not run"


def test_a_policy_missed_fails_under_the_chatsh_profile_without_strict():
    result = conform_broken("no-length-cap", "-k", "names.too-long", "--profile", "chatsh")
    out = result.stdout.decode()
    assert result.returncode == 1, out
    assert "names.too-long  FAIL" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed, 0 warnings, 0 skipped"


def test_a_server_that_dies_after_a_warning_leaves_the_rest_not_run_and_fails(tmp_path):
    """No case failed, one warned and the server died: the rest is not run, which fails
    the run, and JUnit calls each case not run an error."""
    result = conform_broken("dies-after-warning", "-k", "not-hello-first-closes", "-k",
                            "hello-after-login", "-k", "list.self", "--junit",
                            str(tmp_path / "c.xml"))
    out = result.stdout.decode()
    assert result.returncode == 1, out
    assert "handshake.not-hello-first-closes  WARN" in out
    assert "the server stopped answering" in out and "list.self" not in out
    assert out.splitlines()[-1] == "0 passed, 0 failed, 1 warnings, 0 skipped, 2 not run"
    suite = ElementTree.parse(tmp_path / "c.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("3", "0", "2", "0")
    for case_id in ("handshake.hello-after-login", "list.self"):
        error = suite.find(f"testcase[@name='{case_id}']/error")
        assert error is not None and "not run" in error.get("message")
        assert error.get("message").endswith("the server stopped answering")
    assert suite.find("testcase/skipped") is None


@pytest.mark.parametrize("case_id", ["errors.unknown-header", "handshake.hello-after-login"])
def test_a_session_that_ends_after_a_right_bad_rqst_hdr_fails(case_id):
    outcome = outcome_on("closes-after-bad-hdr", case_id)
    assert (outcome.result, outcome.got) == ("fail", "the connection closed")
    assert outcome.expected.endswith("the session goes on")


NEED_LIST_OR_BAD_DEST_USER = {"list.self", "list.format", "list.updates", "send.bad-dest",
                              "framing.pipelined"}


def test_an_older_version_server_fails_only_what_needs_list_or_bad_dest_user():
    result = conform_broken("older-version", "--json", timeout="1")
    report = json.loads(result.stdout)
    results = {c["id"]: c["result"] for c in report["cases"]}
    assert {i for i, r in results.items() if r != "pass"} == {
        *NEED_LIST_OR_BAD_DEST_USER, "handshake.busy", "handshake.retry-after-in-use"}, results
    assert results["handshake.busy"] == results["handshake.retry-after-in-use"] == "skip"
    assert report["notes"] == [OLDER_VERSION]
    text = conform_broken("older-version", "-k", "send.echobot", "-k", "list.self")
    assert text.stdout.decode().splitlines()[0] == f"note: {OLDER_VERSION}"
    assert text.stdout.decode().count("older version") == 1


def test_an_older_version_server_without_echobot_skips_the_echobot_case():
    outcome = outcome_on("older-version", "send.echobot", quirks=("no-echobot",))
    assert (outcome.result, outcome.got) == ("skip", "the server has no echobot: LIST got "
                                             "BAD-RQST-HDR, and SEND echobot got UNKNOWN")


def test_a_large_write_keeps_to_the_deadline():
    stalled = BrokenServer("stall-large")
    try:
        item = next(c for c in CASES if c.id == "framing.sixteen-mib")
        outcome = run_case(item, Context("127.0.0.1", stalled.port, 0.5))
    finally:
        stalled.stop()
    assert outcome.result == "fail"
    assert outcome.seconds < item.weight * 0.5 + 1.0
    assert "stopped reading" in outcome.got or "no DELIVERY" in outcome.got


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


def unsafe_characters(text: str) -> set[str]:
    """What in ``text`` a terminal could act on or hide, or XML refuses: anything not
    printable but the newline."""
    return {char for char in text if not char.isprintable() and char != "\n"}


@pytest.mark.timeout(240)
def test_a_hostile_servers_bytes_reach_every_output_escaped_and_cut(tmp_path):
    """A server whose every reply holds terminal commands, controls, invalid UTF-8 and
    XML's specials: the text report, --json and --junit carry them only escaped."""
    hostile = BrokenServer("hostile")
    peer = f"127.0.0.1:{hostile.port}"
    try:
        text = conform(hostile.port, "--peer", peer, "--junit", str(tmp_path / "c.xml"),
                       timeout="1")
        as_json = conform(hostile.port, "--peer", peer, "--json", "-k", "list", "-k",
                          "send", "-k", "handshake.in-use", timeout="1")
    finally:
        hostile.stop()
    out = text.stdout.decode()  # strict: a lone surrogate could not be encoded
    assert text.returncode == 1 and b"Traceback" not in text.stderr, text.stderr
    assert unsafe_characters(out) == set(), out
    assert max(len(line) for line in out.splitlines()) < 700
    assert "^[]0;pwned^G^[[2J" in out and "<U+202E>" in out and "\\xed\\xa0\\x80" in out
    for case_id in ("list.self", "peer.list", "send.delivered", "handshake.in-use"):
        assert f"{case_id} " in out and "pwned" in out.split(f"{case_id} ", 1)[1].split(
            "\n    got:", 1)[1].split("\n", 1)[0], case_id
    report = json.loads(as_json.stdout.decode())
    assert unsafe_characters(as_json.stdout.decode()) == set()
    assert report["failed"] >= 4 and "^[]0;pwned" in json.dumps(report["cases"])
    xml = (tmp_path / "c.xml").read_bytes()
    assert unsafe_characters(xml.decode()) == set()
    suite = ElementTree.fromstring(xml)
    assert int(suite.get("failures")) == out.count("  FAIL  ") > 10
    assert HOSTILE not in xml and b"]]>" not in xml.replace(b"]]&gt;", b"")


def test_a_name_never_freed_says_what_every_attempt_got_and_for_how_long():
    outcome = outcome_on("never-forget", "lifecycle.freed-clean")
    assert outcome.result == "fail"
    assert re.fullmatch(r"\d+ attempts over 1\.\d s: IN-USE each time", outcome.got), outcome.got


def test_a_refusal_cut_short_by_the_close_says_so():
    outcome = outcome_on("cut-refusal", "handshake.in-use")
    assert (outcome.result, outcome.got) == (
        "fail", "IN-USE without its newline, then the connection closed")


def test_a_large_message_lost_says_what_the_connection_took_and_what_the_sender_got():
    outcome = outcome_on("cap-512k", "framing.one-mib")
    sent = len(f"SEND cf{os.getpid() % 10000}x0 ") + (1 << 20) + 1  # the probe's name
    assert outcome.result == "fail"
    assert re.fullmatch(r"no DELIVERY in 2\.\d s; the connection took all \d+ bytes of the "
                        r"SEND \(how many of them the server read is not known: the kernel "
                        r"buffers some\); the sender got BAD-RQST-BODY", outcome.got), outcome.got
    assert f"all {sent} bytes" in outcome.got


@pytest.mark.parametrize(("fault", "case_id"), [("list-not-self", "list.self"),
                                                ("list-spaces", "list.format"),
                                                ("never-forget", "list.updates")])
def test_a_list_case_shows_the_list_that_arrived(fault, case_id):
    outcome = outcome_on(fault, case_id)
    assert outcome.result == "fail"
    listed = outcome.got.rpartition(": ")[2] if case_id == "list.updates" else outcome.got
    assert re.fullmatch(r"LIST-OK echobot(,cf\d+x\d+)*" if fault != "list-spaces" else
                        r"LIST-OK echobot(, cf\d+x\d+)+", listed.removesuffix(" each time")
                        ), outcome.got


def test_an_outcome_keeps_the_last_lines_sent():
    outcome = Outcome("a.b", "a case", "required", "fail", 1.0, sent=tuple(
        f"SEND x {n}" for n in range(100)))
    assert outcome.sent == ("... 81 earlier lines", *(f"SEND x {n}" for n in range(81, 100)))
    assert replace(outcome, result="warn").sent == outcome.sent


def test_cases_spell_and_judge_lines_by_the_table():
    """What conform sends and expects is spelt by the table, in either version; a line of a
    word a body follows has the space before it (``LIST-OK`` alone is no list)."""
    assert spelt(Word.SEND, "bob", "  two  spaces") == b"SEND bob   two  spaces"
    assert spelt(Word.HELLO_FROM, "") == b"HELLO-FROM "
    assert spelt(Word.LIST, version=OLDER) == b"WHO"
    assert is_line(b"LIST-OK a,b", Word.LIST_OK) and is_line(b"WHO-OK a", Word.LIST_OK, OLDER)
    assert not any((is_line(b"LIST-OK", Word.LIST_OK), is_line(b"WHO-OK a", Word.LIST_OK),
                    is_line(None, Word.SEND_OK), is_line(b"SEND-OK x", Word.SEND_OK)))
    assert is_line(b"SEND-OK", Word.SEND_OK)


def test_busy_before_max_clients_names_the_per_address_bound(server_factory):
    """Every connection of a run comes from one address: a server that bounds the users
    of one address answers BUSY early, and the case says what that may be."""
    server = server_factory(max_clients=10, max_clients_per_address=5)
    result = conform(server.port, "--max-clients", "10", "-k", "handshake.busy")
    out = result.stdout.decode()
    assert result.returncode == 1, out
    assert "BUSY after 5 users" in out and "--max-clients-per-address" in out, out
