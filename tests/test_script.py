"""Script mode end to end: the real chatsh process against a real server."""

import subprocess

from conftest import CHATSH, RawClient, chatsh_env


def run_chatsh(port, *args, script=None, stdin=None, env_extra=None, timeout=60):
    cmd = [CHATSH, "--port", str(port), *args]
    if script is not None:
        cmd += ["--script", str(script)]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout,
                          env=chatsh_env(**(env_extra or {})))


def write(tmp_path, text, name="s.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_basic_flow(server, tmp_path):
    path = write(tmp_path, "alice\n@echobot hello there\n!who\n@nobody hi\n!quit\n@echobot late\n")
    result = run_chatsh(server.port, script=path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as alice!",
        "The message was sent successfully",
        "From echobot: hello there",
        "There are 2 online users:",
        "echobot",
        "alice",
        "The destination user does not exist",
    ]


def test_no_quit_comments_blank_lines_and_user_flag(server, tmp_path):
    path = write(tmp_path, "# greet\n\n@echobot one\n   \n# @echobot skipped\n@echobot two\n")
    result = run_chatsh(server.port, "--user", "bob", script=path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as bob!",
        "The message was sent successfully", "From echobot: one",
        "The message was sent successfully", "From echobot: two",
    ]


def test_thousand_messages_arrive_complete_and_in_order(server, tmp_path):
    lines = ["carol"] + [f"@echobot message {i}" for i in range(1000)]
    result = run_chatsh(server.port, script=write(tmp_path, "\n".join(lines)))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode().splitlines()
    assert out.count("The message was sent successfully") == 1000
    echoes = [line for line in out if line.startswith("From echobot: ")]
    assert echoes == [f"From echobot: message {i}" for i in range(1000)]


def test_two_mib_round_trip(server, tmp_path):
    body = "é" + "0123456789" * 200_000
    result = run_chatsh(server.port, script=write(tmp_path, f"dave\n@echobot {body}\n"))
    assert result.returncode == 0, result.stderr
    assert f"From echobot: {body}" in result.stdout.decode().splitlines()


def test_unknown_destination_and_strict(server, tmp_path):
    path = write(tmp_path, "erin\n@nobody hi\n@echobot after\n")
    relaxed = run_chatsh(server.port, script=path)
    assert relaxed.returncode == 0
    assert b"The destination user does not exist" in relaxed.stdout
    strict = run_chatsh(server.port, "--strict", script=path)
    assert strict.returncode == 1
    assert b"line 2: @nobody hi" in strict.stderr


def test_rejected_lines_are_named_and_not_sent(server, tmp_path):
    path = write(tmp_path, "frank\nhello\n@echobot\n!dance\n@echobot ok\n")
    result = run_chatsh(server.port, script=path)
    assert result.returncode == 0
    err = result.stderr.decode()
    for number in (2, 3, 4):
        assert f"line {number}:" in err
    assert result.stdout.decode().count("The message was sent successfully") == 1
    strict = run_chatsh(server.port, "--strict", script=path)
    assert strict.returncode == 1
    assert b"sent successfully" not in strict.stdout


def test_login_failures(server_factory, tmp_path):
    server = server_factory(max_clients=2)
    holder = RawClient(server.port)
    assert holder.login("gina") == b"HELLO gina"
    in_use = run_chatsh(server.port, script=write(tmp_path, "gina\n"))
    assert in_use.returncode == 1
    assert b"Cannot log in as gina. That username is already in use." in in_use.stdout
    second = RawClient(server.port)
    assert second.login("gus") == b"HELLO gus"
    full = run_chatsh(server.port, script=write(tmp_path, "hank\n@echobot hi\n"))
    assert full.returncode == 1
    assert full.stdout.decode().splitlines() == ["Cannot log in. The server is full!"]
    bad = run_chatsh(server.port, script=write(tmp_path, "!who\n"))
    assert bad.returncode == 1
    assert bad.stdout.decode().splitlines() == [
        "Cannot log in as !who. That username contains disallowed characters."]
    assert bad.stderr.decode() == "chatsh: '!' is not allowed in a name.\n"


def test_user_quit_from_the_command_line_is_a_name_refused(server):
    """--user NAME is a name, not a typed line: --user '!quit' is refused as '!who' is.
    The script ran nothing and exited 0, as if it had done its work."""
    result = run_chatsh(server.port, "--user", "!quit", "-c", "@echobot hi")
    assert result.returncode == 1
    assert result.stdout.decode().splitlines() == [
        "Cannot log in as !quit. That username contains disallowed characters."]
    assert result.stderr.decode() == "chatsh: '!' is not allowed in a name.\n"


def test_the_first_line_given_with_c_is_the_login_even_a_comment_or_blank(server):
    """-c lines are typed lines: '#x y' as the first was skipped as a comment, so the
    next line, '@echobot hi', was the name refused (or, alone, nothing ran: exit 0)."""
    result = run_chatsh(server.port, "-c", "#x y", "-c", "@echobot hi")
    assert result.returncode == 1
    assert result.stdout.decode().splitlines() == [
        "Cannot log in as #x y. That username contains disallowed characters."]
    alone = run_chatsh(server.port, "-c", "#x y")
    assert alone.returncode == 1 and b"Cannot log in as #x y." in alone.stdout
    blank = run_chatsh(server.port, "-c", "", "-c", "@echobot hi")
    assert blank.returncode == 1 and b"@echobot hi" not in blank.stdout + blank.stderr
    later = run_chatsh(server.port, "-c", "kim", "-c", "# a comment", "-c", "@echobot hi")
    assert later.returncode == 0 and b"From echobot: hi" in later.stdout
    assert later.stderr == b""  # a comment, not a line refused
    named = run_chatsh(server.port, "--user", "lee", "-c", "# a comment", "-c", "@echobot hi")
    assert named.returncode == 0 and b"From echobot: hi" in named.stdout
    assert named.stderr == b""  # with --user the first -c line is a script line like any


def test_stdin_and_dash(server):
    piped = run_chatsh(server.port, stdin=b"ivy\n@echobot piped\n")
    assert piped.returncode == 0
    assert b"From echobot: piped" in piped.stdout
    dash = run_chatsh(server.port, "--script", "-", stdin=b"jack\n@echobot dash\n")
    assert dash.returncode == 0, dash.stderr
    assert b"From echobot: dash" in dash.stdout


def test_nothing_listening(tmp_path):
    import socket
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    result = run_chatsh(port, script=write(tmp_path, "kim\n@echobot hi\n"))
    assert result.returncode == 2
    assert f"127.0.0.1:{port}".encode() in result.stderr
    assert b"Traceback" not in result.stderr


def test_connection_dropped_mid_script_names_unanswered_lines(tmp_path):
    """A server that answers the first request, then closes."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        data = conn.recv(65536)
        conn.send(b"HELLO lee\n")
        while data.count(b"\n") < 3:
            data += conn.recv(65536)
        conn.send(b"SEND-OK\n")
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    path = write(tmp_path, "lee\n@echobot one\n@echobot two\n")
    result = run_chatsh(listener.getsockname()[1], script=path)
    thread.join()
    listener.close()
    assert result.returncode == 3
    err = result.stderr.decode()
    assert "Connection to the server was lost." in err
    assert "line 3: @echobot two" in err
    assert "Traceback" not in err


def test_hostile_text_is_escaped_in_script_output(server, tmp_path):
    sender = RawClient(server.port)
    assert sender.login("mallory") == b"HELLO mallory"
    proc = subprocess.Popen([CHATSH, "--port", str(server.port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=chatsh_env())
    proc.stdin.write(b"nina\n!who\n")
    proc.stdin.flush()
    first = proc.stdout.readline()
    assert first == b"Successfully logged in as nina!\n"
    sender.write("SEND nina \x1b[2J\x9b\x07bell\u202e\n".encode())
    assert sender.read_line() == b"SEND-OK"
    out, err = proc.communicate(timeout=30)
    assert b"From mallory: ^[[2J<9b>^Gbell<U+202E>" in out
    assert b"\x1b" not in out


def test_long_lines_keep_their_bytes_exactly(server, tmp_path):
    """A long ASCII line is sent from the bytes read and its echo written as it came;
    the output is the same text any line gives, byte for byte."""
    body = "".join(chr(32 + i % 95) for i in range(3 * 1024 * 1024))
    script = f"\ufefffred\r\n@echobot {body}\r\n# {body}\n{' ' * 2_000_000}\n@echobot after\n"
    for source in ("file", "stdin"):
        if source == "file":
            result = run_chatsh(server.port, script=write(tmp_path, script))
        else:
            result = run_chatsh(server.port, "--script", "-", stdin=script.encode())
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().split("\n") == [
            "Successfully logged in as fred!",
            "The message was sent successfully", f"From echobot: {body}",
            "The message was sent successfully", "From echobot: after", ""]


def test_long_lines_are_refused_as_short_ones_are(server, tmp_path):
    long = "x" * 2_000_000
    script = (f"gina\n@{'n' * 65} {long}\n@echobot {long}\0{long}\n@echobot {' ' * 2_000_000}\n"
              f"{long}\n@echobot fine\n")
    result = run_chatsh(server.port, script=write(tmp_path, script))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as gina!",
        "The message was sent successfully", "From echobot: fine"]
    err = result.stderr.decode().splitlines()
    assert [line.split(":")[1] for line in err] == [" line 2", " line 3", " line 4", " line 5"]
    assert "a name can have at most 64 characters" in err[0]
    assert "a message cannot contain '\\x00'" in err[1]
    assert "Empty message" in err[2]
    assert "Start a message with @<user>" in err[3]
    assert all(len(line) < 1000 for line in err)


def test_a_long_body_with_controls_is_escaped(server, tmp_path):
    sender = RawClient(server.port)
    assert sender.login("mallory") == b"HELLO mallory"
    body = "x" * 1_000_000 + "\x1b[2J\x07"
    proc = subprocess.Popen([CHATSH, "--port", str(server.port), "--script", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=chatsh_env())
    proc.stdin.write(b"nora\n!who\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"Successfully logged in as nora!\n"
    assert [proc.stdout.readline() for _ in range(4)][0] == b"There are 3 online users:\n"
    sender.write(f"SEND nora {body}\nSEND nora {'y' * 1_000_000}\n".encode())
    assert sender.read_line() == b"SEND-OK"
    lines = [proc.stdout.readline() for _ in range(2)]
    proc.communicate(timeout=30)
    assert lines[0] == ("From mallory: " + "x" * 1_000_000 + "^[[2J^G\n").encode()
    assert lines[1] == ("From mallory: " + "y" * 1_000_000 + "\n").encode()
    assert b"\x1b" not in b"".join(lines) and b"\x07" not in b"".join(lines)


def test_a_line_to_several_names_sends_to_each_and_names_who_failed(server, tmp_path):
    """One SEND per name, in order; stdout keeps the exact lines, stderr names the one
    that failed (by line and name), --strict too."""
    bob = RawClient(server.port)
    assert bob.login("bob") == b"HELLO bob"
    path = write(tmp_path, "erin\n@bob,nobody,echobot hi all\n")
    relaxed = run_chatsh(server.port, script=path)
    assert relaxed.returncode == 0, relaxed.stderr
    assert relaxed.stdout.decode().splitlines() == [
        "Successfully logged in as erin!",
        "The message was sent successfully",
        "The destination user does not exist",
        "The message was sent successfully",
        "From echobot: hi all",
    ]
    assert relaxed.stderr.decode() == (
        "chatsh: line 2: @nobody: The destination user does not exist\n")
    assert bob.read_line() == b"DELIVERY erin hi all"
    strict = run_chatsh(server.port, "--strict", script=path)
    assert strict.returncode == 1
    assert ("line 2: @bob,nobody,echobot hi all: The destination user does not exist "
            "(@nobody)") in strict.stderr.decode()
    bob.close()
