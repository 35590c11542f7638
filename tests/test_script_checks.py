"""Scripts that check: !expect, !wait, -c and --json against a real server."""

import json
import signal
import subprocess
import threading
import time

import pytest
from conftest import CHATSH, chatsh_env
from terminal import ScriptedServer
from test_script import run_chatsh, write


def test_expectation_met_is_a_barrier(server, tmp_path):
    script = write(tmp_path, "ann\n@echobot first\n!expect From echobot: first\n"
                             "@echobot second\n!expect /^From echobot: s.c/\n"
                             "!expect The message was sent\n")
    result = run_chatsh(server.port, "--expect-timeout", "0.5", script=script)
    assert result.returncode == 1  # the window starts after the last line matched
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as ann!", "The message was sent successfully",
        "From echobot: first", "The message was sent successfully", "From echobot: second"]
    assert "line 6: !expect The message was sent: not seen" in result.stderr.decode()


def test_expectation_missed_exits_1_naming_the_line(server, tmp_path):
    script = write(tmp_path, "bea\n@echobot ping\n# a comment\n!expect From echobot: pong\n"
                             "@echobot never sent\n")
    result = run_chatsh(server.port, "--expect-timeout", "0.5", script=script)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.splitlines()[0] == ("chatsh: line 4: !expect From echobot: pong: not seen "
                                   "within 0.5 s; the last lines shown:")
    assert "  From echobot: ping" in err.splitlines()
    assert "never sent" not in result.stdout.decode()


def test_missed_expectation_exits_1_without_strict_and_shows_escapes(server, tmp_path):
    script = write(tmp_path, "cal\n@echobot \x1b[31mred\n!expect blue\n")
    result = run_chatsh(server.port, "--expect-timeout", "0.3", script=script)
    assert result.returncode == 1
    assert "  From echobot: ^[[31mred" in result.stderr.decode().splitlines()
    assert b"\x1b" not in result.stderr


def test_c_lines_are_a_one_line_smoke_test(server):
    ok = run_chatsh(server.port, "--user", "ci", "-c", "@echobot ping",
                    "-c", "!expect From echobot: ping")
    assert ok.returncode == 0, ok.stderr
    bad = run_chatsh(server.port, "--user", "ci2", "-c", "@echobot ping",
                     "-c", "!expect From echobot: pong", "--expect-timeout", "0.3")
    assert bad.returncode == 1
    login_from_c = run_chatsh(server.port, "-c", "dee", "-c", "!who")
    assert login_from_c.stdout.decode().splitlines()[0] == "Successfully logged in as dee!"
    both = run_chatsh(server.port, "-c", "x", "--script", "whatever.txt")
    assert both.returncode == 2 and b"not both" in both.stderr


def test_wait_pauses_sending_while_replies_print(server):
    result = run_chatsh(server.port, "-c", "eve", "-c", "@echobot before", "-c", "!wait 0.2",
                        "-c", "!expect From echobot: before", "-c", "!wait nonsense")
    assert result.returncode == 0, result.stderr
    assert b"line 5: !wait needs a number of seconds, not 'nonsense'." in result.stderr


def events(result):
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_json_lines_event_by_event(server):
    result = run_chatsh(server.port, "--json", "-c", "fay", "-c", "@echobot hé \x1b[1m",
                        "-c", "!expect From echobot", "-c", "!who", "-c", "@ghost boo",
                        "-c", "oops", "-c", "!expect /does not exist/")
    assert result.returncode == 0, result.stderr
    seen = events(result)
    summary = seen.pop()
    assert summary["event"] == "summary" and summary["status"] == 0
    assert (summary["sent"], summary["answered"], summary["delivered"]) == (3, 3, 1)
    assert summary["seconds"] > 0
    assert seen[:5] == [
        {"event": "logged-in", "name": "fay", "asked": "fay"},
        {"event": "sent", "line": 2, "request": "SEND", "text": "@echobot hé \x1b[1m",
         "to": "echobot"},
        {"event": "send-ok", "line": 2, "to": "echobot"},
        {"event": "delivery", "from": "echobot", "body": "hé \x1b[1m"},
        {"event": "expect-met", "line": 3, "expected": "From echobot",
         "matched": "From echobot: hé ^[[1m"},
    ]
    rest = seen[5:]
    assert {"event": "sent", "line": 4, "request": "LIST", "text": "!who"} in rest
    assert {"event": "users", "line": 4, "users": ["echobot", "fay"]} in rest
    assert {"event": "bad-dest-user", "line": 5, "to": "ghost"} in rest
    assert {"event": "rejected", "line": 6, "text": "oops",
            "reason": "Start a message with @<user> or a command with ! (type !help)."} in rest
    assert rest[-1]["event"] == "expect-met" and rest[-1]["line"] == 7
    assert rest.index({"event": "users", "line": 4, "users": ["echobot", "fay"]}) < rest.index(
        {"event": "bad-dest-user", "line": 5, "to": "ghost"})
    assert b"\x1b" not in result.stdout  # JSON-escaped, safe on a terminal


def test_json_from_piped_stdin_and_a_missed_expectation(server):
    result = run_chatsh(server.port, "--json", "--expect-timeout", "0.3",
                        stdin=b"gil\n!expect nothing like this\n")
    assert result.returncode == 1
    seen = events(result)
    assert seen[-2] == {"event": "expect-missed", "line": 2, "expected": "nothing like this",
                        "timeout": 0.3, "last": ["Successfully logged in as gil!"]}
    assert seen[-1]["status"] == 1


def test_json_connection_lost_names_the_unanswered_lines():
    scripted = ScriptedServer()

    def serve():
        scripted.accept()
        assert scripted.read_line() == b"SEND bob one"
        assert scripted.read_line() == b"SEND bob two"
        scripted.send(b"SEND-OK\n")
        scripted.conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        result = run_chatsh(scripted.port, "--json", "-c", "hal", "-c", "@bob one",
                            "-c", "@bob two")
    finally:
        thread.join()
        scripted.close()
    assert result.returncode == 3
    seen = events(result)
    assert {"event": "send-ok", "line": 2, "to": "bob"} in seen
    assert seen[-2] == {"event": "connection-lost",
                        "unanswered": [{"line": 3, "text": "@bob two"}]}
    assert seen[-1]["status"] == 3
    assert b"line 3: @bob two" in result.stderr


def test_later_lines_wait_for_the_expectation():
    scripted = ScriptedServer()
    order = []

    def serve():
        scripted.accept()
        order.append(scripted.read_line())
        scripted.send(b"SEND-OK\n")
        scripted.conn.settimeout(0.5)  # ample for a pipelined line to follow
        try:
            order.append(scripted.read_line())
        except TimeoutError:
            order.append("held back")
        scripted.conn.settimeout(10)
        scripted.send(b"DELIVERY bob go on\n")
        order.append(scripted.read_line())
        scripted.send(b"SEND-OK\n")
        order.append(scripted.read_line())
        scripted.send(b"LIST-OK bob,me\n")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        result = run_chatsh(scripted.port, "-c", "me", "-c", "@bob one",
                            "-c", "!expect From bob: go", "-c", "@bob two")
    finally:
        thread.join()
        scripted.close()
    assert order == [b"SEND bob one", "held back", b"SEND bob two", b"LIST"]
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_a_check_that_cannot_run_fails_the_run_whatever_strict_says(server, mode):
    for check in ("!expect /(/", "!expect"):
        result = run_chatsh(server.port, *mode, "-c", "me", "-c", check, "-c", "!who")
        assert result.returncode == 1, (check, result.stderr)
        assert b"line 2" in result.stderr


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_a_wait_too_long_to_mean_anything_is_refused_in_one_line(server, mode):
    result = run_chatsh(server.port, *mode, "-c", "me", "-c", "!wait 1e10", "-c", "!who")
    assert result.returncode == 0
    assert b"Traceback" not in result.stderr and b"OverflowError" not in result.stderr
    assert b"!wait takes at most" in result.stderr
    if mode:
        assert b'"event": "summary"' in result.stdout


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_expect_sees_the_same_lines_as_text_and_as_json(server, mode):
    result = run_chatsh(server.port, *mode, "-c", "me", "-c", "!help", "-c", "!expect Commands:")
    assert result.returncode == 0, result.stderr


def test_a_catastrophic_pattern_keeps_to_its_deadline(server):
    """The regex runs outside the window's lock and with a bound of its own."""
    start = time.monotonic()
    result = run_chatsh(server.port, "--expect-timeout", "2", "-c", "me",
                        "-c", "@echobot " + "a" * 40 + "!", "-c", "!expect /(a|aa)+$/")
    assert result.returncode == 1
    assert b"not seen within 2 s" in result.stderr
    assert time.monotonic() - start < 20


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_json_ends_with_its_summary_when_stopped_by_a_signal(server, signum, status):
    proc = subprocess.Popen([CHATSH, "--port", str(server.port), "--json", "--script", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=chatsh_env())
    try:
        proc.stdin.write(b"sig\n@echobot before\n")
        proc.stdin.flush()
        seen = b""
        while b'"event": "delivery"' not in seen:
            line = proc.stdout.readline()
            assert line, "the stream ended early"
            seen += line
        proc.send_signal(signum)
        rest, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status
    last = json.loads(rest.decode().splitlines()[-1])
    assert last["event"] == "summary" and last["status"] == status
    assert b"Traceback" not in err


def test_json_never_carries_a_raw_control_character(server):
    body = "c1 \x9b31m bidi \u202e end"
    result = run_chatsh(server.port, "--json", "-c", "raw", "-c", f"@echobot {body}")
    assert result.returncode == 0, result.stderr
    assert not any(ch in result.stdout.decode() for ch in "\x1b\x9b\u202e")
    assert {"event": "delivery", "from": "echobot", "body": body} in events(result)


@pytest.mark.parametrize(("refusal", "reason"), [
    (b"IN-USE\n", "in-use"), (b"BUSY\n", "busy"), (b"BAD-RQST-BODY\n", "bad-name"),
    (b"BAD-RQST-HDR\n", "bad-header"), (b"", "closed")])
def test_json_names_each_refusal_and_unknown_lines(refusal, reason):
    scripted = ScriptedServer()
    try:
        proc = subprocess.Popen([CHATSH, "--port", str(scripted.port), "--json", "-c", "me"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=chatsh_env())
        scripted.accept(greet=False)
        scripted.send(b"ODD \x1b line\n" + refusal)
        scripted.conn.close()
        out, _ = proc.communicate(timeout=10)
    finally:
        scripted.close()
    seen = [json.loads(line) for line in out.decode().splitlines()]
    assert {"event": "login-refused", "name": "me", "reason": reason} in seen
    assert {"event": "unknown-line", "text": "ODD \x1b line"} in seen
