"""The command line: --version, --help, environment defaults, bad arguments."""

import subprocess
import sys

import pytest
from conftest import CHATSH, chatsh_env

from chatsh import __version__


def chatsh(*args, stdin=b"", **env):
    return subprocess.run([CHATSH, *args], input=stdin,
                          capture_output=True, timeout=60, env=chatsh_env(**env))


def test_version():
    result = chatsh("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"chatsh {__version__}"


def test_help_shows_examples_for_each_command():
    for args, example in ((["--help"], "chatsh serve --port 6000"),
                          (["serve", "--help"], "--max-clients 200"),
                          (["conform", "--help"], "--max-clients 64")):
        result = chatsh(*args)
        assert result.returncode == 0
        assert "examples:" in result.stdout.decode()
        assert example in result.stdout.decode()


def test_port_from_the_environment(server):
    result = chatsh(stdin=b"envuser\n@echobot via env\n", CHATSH_PORT=str(server.port))
    assert result.returncode == 0, result.stderr
    assert b"From echobot: via env" in result.stdout


def test_no_host_no_port_uses_the_embedded_server():
    result = chatsh(stdin=b"solo\n!who\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as solo!", "There are 2 online users:", "echobot", "solo"]


def test_bad_arguments_are_one_clear_error():
    for args, env in ((["--port", "99999"], {}), ([], {"CHATSH_PORT": "abc"}),
                      (["--script", "/nonexistent/script.txt", "--port", "1"], {})):
        result = chatsh(*args, **env)
        assert result.returncode == 2
        assert b"Traceback" not in result.stderr
        assert result.stderr.strip()


def test_script_mode_imports_neither_prompt_toolkit_nor_asyncio(server, tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("light\n@echobot hi\n")
    probe = ("import sys\nfrom chatsh.cli import main\n"
             f"status = main(['--port', '{server.port}', '--script', {str(script)!r}])\n"
             "print('LOADED' if any(m.startswith(('prompt_toolkit', 'asyncio')) "
             "for m in sys.modules) else 'LIGHT', status)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60,
                            env=chatsh_env())
    assert result.stdout.decode().splitlines()[-1] == "LIGHT 0", result.stderr


LONG_LABEL = "a" * 70


@pytest.mark.parametrize(("args", "env", "said"), [
    (["--host", "..", "--port", "5", "-c", "x"], {}, "Cannot connect to ..:5: "),
    (["--host", "a..b", "-c", "x"], {}, "Cannot connect to a..b:5378: "),
    (["--host", LONG_LABEL, "--port", "5", "-c", "x"], {}, f"Cannot connect to {LONG_LABEL}:5"),
    (["-c", "x"], {"CHATSH_HOST": ".."}, "Cannot connect to ..:5378: "),
    (["serve", "--host", "..", "--port", "0"], {}, "cannot listen on ..:0: "),
    (["conform", "--host", "a..b", "--port", "5"], {}, "cannot reach a..b:5: "),
])
def test_a_host_that_is_no_valid_name_is_one_line_and_status_2(args, env, said):
    result = chatsh(*args, **env)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert err.count("\n") == 1 and said in err and "not a valid host name" in err


HOSTILE_HOST = "\x1b]2;owned\x07h\x9b31m"


@pytest.mark.parametrize(("args", "env", "said"), [
    (["--host", HOSTILE_HOST, "-c", "x"], {}, "Cannot connect to ^[]2;owned^Gh<9b>31m:5378"),
    (["-c", "x"], {"CHATSH_HOST": HOSTILE_HOST}, "Cannot connect to ^[]2;owned^Gh<9b>31m:5378"),
    (["serve", "--host", HOSTILE_HOST, "--port", "0"], {},
     "cannot listen on ^[]2;owned^Gh<9b>31m:0"),
    (["conform", "--host", HOSTILE_HOST, "--port", "5"], {},
     "cannot reach ^[]2;owned^Gh<9b>31m:5"),
    # the operator's other names of places, which were written raw
    (["serve", "--port", "0", "--metrics", f"{HOSTILE_HOST}:80"], {},
     "cannot serve metrics on ^[]2;owned^Gh<9b>31m:80"),
    (["serve", "--port", "0", "--tls-cert", f"/none/{HOSTILE_HOST}"], {},
     "cannot load the certificate /none/^[]2;owned^Gh<9b>31m"),
    (["serve", "--port", "0", "--cluster", f"redis://{HOSTILE_HOST}:1"], {},
     "redis://^[]2;owned^Gh<9b>31m:1"),
    (["--tls-ca", f"/none/{HOSTILE_HOST}", "-c", "x"], {},
     "cannot read the CA file /none/^[]2;owned^Gh<9b>31m"),
])
def test_a_host_with_control_characters_is_shown_escaped(args, env, said):
    """A host name from a settings file, the environment or a pasted command line never
    sets the terminal's title or colours when it is named in an error."""
    result = chatsh(*args, **env)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert said in err and "\x1b" not in err and "\x07" not in err


def test_version_loads_nothing_of_chatsh_but_the_command_line():
    """Start-up is a speed target: --version reads its defaults from a module that
    imports nothing (the protocol, the framer and dataclasses took 20 ms)."""
    code = ("import sys\nfrom chatsh.cli import main\ntry:\n    main(['--version'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('chatsh', 'dataclasses'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=chatsh_env(), timeout=60)
    assert result.stdout.splitlines()[-1] == ("['chatsh', 'chatsh.arguments', 'chatsh.cli', "
                                              "'chatsh.defaults']")


@pytest.mark.parametrize(("args", "file", "reconnect"), [
    ([], "", True),
    (["--reconnect"], "", True),
    (["--no-reconnect"], "", False),
    ([], "reconnect = false\n", False),
    (["--reconnect"], "reconnect = false\n", True),
    (["--no-reconnect"], "reconnect = true\n", False),
])
def test_the_shell_reconnects_unless_told_not_to(monkeypatch, tmp_path, args, file, reconnect):
    """Reconnecting is the default; --reconnect (old command lines) is still taken, and
    a flag wins over the settings file."""
    from chatsh.cli import client_parser
    from chatsh.config import fill_in

    (tmp_path / "chatsh").mkdir()
    (tmp_path / "chatsh" / "config.toml").write_text(file)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    parsed = client_parser().parse_args(args)
    fill_in(parsed)
    assert parsed.reconnect is reconnect


def test_help_groups_the_options_and_names_every_command():
    """Connection, shell and script options apart, each with examples; the commands
    once logged in, !to and @a,b included."""
    text = chatsh("--help", COLUMNS="100").stdout.decode()
    sections = {}
    for title in ("connection:", "shell:", "scripts:", "examples:"):
        assert f"\n{title}\n" in text, title
        sections[title] = text.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]
    assert "--host" in sections["connection:"] and "--port" in sections["connection:"]
    for option in ("--no-reconnect", "--timestamps", "--log", "--no-bell"):
        assert option in sections["shell:"], option
    for option in ("--script", "--strict", "--json", "--expect-timeout"):
        assert option in sections["scripts:"], option
    for command in ("!to <user>", "@<user>,<user> <message>", "!who", "!quit"):
        assert command in text, command


@pytest.mark.parametrize(("args", "env", "file", "refused"), [
    (["--port", "6000"], {}, 'colour = true\n', True),
    ([], {"CHATSH_PORT": "6000"}, 'colour = true\n', True),
    ([], {}, 'port = 6000\nhots = "chat.example.org"\n', True),
    (["--port", "6000"], {}, 'host = "chat.example.org"\ncolour = true\n', False),
    (["--host", "127.0.0.1", "--port", "6000"], {}, 'colour = true\n', False),
    (["--port", "6000"], {"CHATSH_HOST": "127.0.0.1"}, 'colour = true\n', False),
    (["--port", "6000"], {}, 'user = "alice"\n', False),
])
def test_a_settings_file_with_a_problem_and_no_host_named_connects_nowhere(
        monkeypatch, tmp_path, args, env, file, refused):
    """``--port`` alone goes to the settings file's host: with a problem in the file, the
    host it meant may be the line skipped, so 127.0.0.1 is no safer a guess than the
    private server. A host from a flag, the environment or the file's valid lines counts."""
    from chatsh.cli import client_parser
    from chatsh.config import fill_in

    (tmp_path / "chatsh").mkdir()
    (tmp_path / "chatsh" / "config.toml").write_text(file)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("CHATSH_HOST", "CHATSH_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    refusal = fill_in(client_parser().parse_args(args))
    assert (refusal is not None) is refused
    if refused:
        assert refusal.startswith("chatsh: no host to connect to") and "--host" in refusal
