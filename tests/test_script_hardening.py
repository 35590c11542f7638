"""Script mode against careless input, a vanished reader and a misbehaving server."""

import subprocess
import threading
import time

from conftest import CHATSH, DEADLINE, chatsh_env
from terminal import ScriptedServer
from test_script import run_chatsh

from chatsh.commands import help_lines


def test_piped_bytes_that_are_not_utf8_and_a_bom(server):
    result = run_chatsh(server.port, stdin=b"\xef\xbb\xbfbom\n@echobot caf\xe9 \xff\n!who\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as bom!", "The message was sent successfully",
        "From echobot: caf\ufffd \ufffd", "There are 2 online users:", "echobot", "bom"]
    assert b"Traceback" not in result.stderr


def test_bom_in_a_script_file_is_not_part_of_the_name(server, tmp_path):
    script = tmp_path / "bom.txt"
    script.write_bytes(b"\xef\xbb\xbfnobom\n@echobot hi\n")
    result = run_chatsh(server.port, "--script", str(script))
    assert result.stdout.decode().splitlines()[0] == "Successfully logged in as nobom!"


def test_a_reader_that_goes_away_ends_the_run_quietly(server, tmp_path):
    script = tmp_path / "many.txt"
    script.write_bytes(b"pip\n" + b"".join(b"@echobot line %d\n" % i for i in range(20000)))
    chatsh = subprocess.Popen([CHATSH, "--port", str(server.port), "--script", str(script)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=chatsh_env())
    head = chatsh.stdout.readline()
    chatsh.stdout.close()  # the reader is gone, as with | head -1
    _, err = chatsh.communicate(timeout=30)
    assert head == b"Successfully logged in as pip!\n"
    assert chatsh.returncode == 141
    assert err == b""


def test_a_full_disk_is_one_line_and_status_1(server):
    with open("/dev/full", "w") as full:
        result = subprocess.run([CHATSH, "--port", str(server.port)], input=b"dee\n@echobot x\n",
                                stdout=full, stderr=subprocess.PIPE, timeout=30,
                                env=chatsh_env())
    assert result.returncode == 1
    assert result.stderr == b"chatsh: cannot write the output: No space left on device\n"


def scripted_run(serve, *args):
    """chatsh -c ... against a server the test plays by hand in ``serve``."""
    scripted = ScriptedServer()
    thread = threading.Thread(target=serve, args=(scripted,))
    thread.start()
    try:
        return run_chatsh(scripted.port, *args, timeout=30)
    finally:
        thread.join()
        scripted.close()


def test_a_stray_reply_cannot_pass_for_the_final_barrier():
    def serve(scripted):
        scripted.accept()
        assert scripted.read_line() == b"SEND bob one"
        scripted.send(b"SEND-OK\nSEND-OK\n")  # one too many
        assert scripted.read_line() == b"LIST"
        scripted.send(b"LIST-OK bob,me\n")

    result = scripted_run(serve, "-c", "me", "-c", "@bob one")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as me!", "The message was sent successfully",
        "The message was sent successfully"]


def test_a_server_that_falls_silent_is_given_up_on():
    def serve(scripted):
        scripted.accept()
        scripted.read_line()
        scripted.read_line()
        try:
            scripted.read_line()  # until chatsh gives up and closes
        except EOFError:
            pass

    result = scripted_run(serve, "--reply-timeout", "0.5", "-c", "me", "-c", "@bob one",
                          "-c", "!who")
    assert result.returncode == 3
    assert result.stderr.decode().splitlines() == [
        "chatsh: no reply from the server in 0.5 s",
        "chatsh: 3 request(s) got no reply:", "  line 2: @bob one", "  line 3: !who",
        "  the final LIST chatsh sends to know every reply has come"]


def test_help_and_echoes_never_tear_each_other_apart(server):
    lines = ["tear"]
    for index in range(300):
        lines += [f"@echobot message {index}", "!help"]
    result = run_chatsh(server.port, stdin=("\n".join(lines) + "\n").encode())
    assert result.returncode == 0, result.stderr
    allowed = {*help_lines(), "Successfully logged in as tear!",
               "The message was sent successfully"}
    for line in result.stdout.decode().splitlines():
        assert line in allowed or line.startswith("From echobot: message "), line


def test_stop_and_wait_talks_to_a_server_that_reads_one_request_per_packet(tmp_path):
    """Pipelined, such a server drops requests and the script gives up (status 3); one
    at a time, every request gets its reply."""
    from broken_server import BrokenServer

    script = tmp_path / "three.txt"
    script.write_text("one\n@one to myself\n@nobody hi\n!who\n")
    server = BrokenServer("first-line-only")
    try:
        pipelined = run_chatsh(server.port, "--script", str(script), "--reply-timeout", "1")
        one_by_one = run_chatsh(server.port, "--script", str(script), "--stop-and-wait")
    finally:
        server.stop()
    assert pipelined.returncode == 3
    assert one_by_one.returncode == 0, one_by_one.stderr
    assert one_by_one.stdout.decode().splitlines() == [
        "Successfully logged in as one!", "The message was sent successfully",
        "From one: to myself", "The destination user does not exist",
        "There are 2 online users:", "echobot", "one"]


def test_a_script_line_past_max_line_is_refused_and_the_rest_runs(server, tmp_path):
    script = tmp_path / "long.txt"
    script.write_bytes(b"rex\n@echobot " + b"x" * 5000 + b"\n@echobot after\n")
    result = run_chatsh(server.port, "--max-line", "1000", "--script", str(script))
    assert result.returncode == 0, result.stderr
    assert b"line 2: the line is longer than 1000 bytes (--max-line)." in result.stderr
    assert result.stderr.count(b"\n") == 1 and b"x" * 100 not in result.stderr
    assert "From echobot: after" in result.stdout.decode()


def test_a_script_without_newlines_stays_within_max_line(server):
    """/dev/zero as a script: one endless line is held up to --max-line, never more."""
    chatsh = subprocess.Popen([CHATSH, "--port", str(server.port), "--user", "zed",
                               "--max-line", "1000000", "--script", "/dev/zero"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=chatsh_env())
    try:
        peak = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and chatsh.poll() is None:
            with open(f"/proc/{chatsh.pid}/status") as status:
                rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
            peak = max(peak, rss)
            time.sleep(0.05)  # sampling, not waiting for anything
        assert chatsh.poll() is None  # still reading zeros, refused line by line
    finally:
        chatsh.kill()
        _, err = chatsh.communicate(timeout=DEADLINE)
    assert peak < 150 * 1024, f"{peak} KiB"
    assert b"line 1: the line is longer than 1000000 bytes (--max-line)." in err
