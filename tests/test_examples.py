"""The examples run as the README says."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CHATSH, RawClient, chatsh_env

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script, expected", [
    ("greet_echobot.txt", "From echobot: Hello, echobot! Are you there?"),
    ("who_check.txt", "There are 2 online users:"),
    ("broadcast.txt", "The destination user does not exist"),
])
def test_example_scripts(server, script, expected):
    result = subprocess.run([CHATSH, "--port", str(server.port),
                             "--script", str(EXAMPLES / script)],
                            capture_output=True, timeout=60, env=chatsh_env())
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout.decode().splitlines()


def test_smoke_test_example_against_chatsh_serve(serve_process, tmp_path):
    script = EXAMPLES / "smoke_test.txt"
    result = subprocess.run([CHATSH, "--port", str(serve_process), "--script", str(script)],
                            capture_output=True, timeout=60, env=chatsh_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "From echobot: ping ✓ 1 2 3" in result.stdout.decode().splitlines()
    broken = script.read_text().replace("From echobot: ping", "From echobot: pong")
    (tmp_path / "broken.txt").write_text(broken)
    failed = subprocess.run([CHATSH, "--port", str(serve_process), "--expect-timeout", "0.5",
                             "--script", "broken.txt"], capture_output=True, timeout=60,
                            env=chatsh_env(), cwd=tmp_path)
    assert failed.returncode == 1
    assert "line 9: !expect From echobot: pong" in failed.stderr.decode()


def test_repeater_bot_answers(server):
    bot = subprocess.Popen([sys.executable, str(EXAMPLES / "repeater_bot.py"),
                            "--port", str(server.port)],
                           stderr=subprocess.PIPE, env=chatsh_env())
    try:
        assert b"online" in bot.stderr.readline()
        visitor = RawClient(server.port)
        assert visitor.login("visitor") == b"HELLO visitor"
        visitor.write("SEND repeater héllo\n".encode())
        assert visitor.read_line() == b"SEND-OK"
        assert visitor.read_line() == "DELIVERY repeater you said 5 characters: héllo".encode()
    finally:
        bot.terminate()
        bot.wait(10)
