"""The settings file: what it sets, every problem named, and one clear line when it cannot
be read at all."""

from __future__ import annotations

import pytest

from chatsh.config import config_path, load_settings


def test_the_file_lives_under_xdg_config_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "chatsh" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path() == tmp_path / "home" / ".config" / "chatsh" / "config.toml"


def test_no_file_is_no_settings_and_no_warning(tmp_path):
    assert load_settings(tmp_path / "none.toml") == ({}, [])


def test_a_good_file_gives_its_settings(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('host = "chat.example.org"\nport = 6000\nuser = "alice"\n'
                    'timestamps = "%H:%M:%S"\nreconnect = true\nbell = false\n')
    assert load_settings(path) == ({"host": "chat.example.org", "port": 6000, "user": "alice",
                                    "timestamps": "%H:%M:%S", "reconnect": True,
                                    "bell": False}, [])


def test_every_valid_setting_counts_and_every_problem_is_named_by_its_line(tmp_path):
    """One typo no longer throws the whole file away."""
    path = tmp_path / "config.toml"
    path.write_text('host = "chat.example.org"\nport = \nuser = "alice"\n# a comment\n'
                    'colour = true\nbell = "no"\ntimestamps = true\nport = 70000\n'
                    'host = chat.example.org\n')
    settings, problems = load_settings(path)
    assert settings == {"host": "chat.example.org", "user": "alice", "timestamps": True}
    assert problems == [
        f"{path}, line 2: Invalid value (at column 8); skipped",
        f"{path}, line 5: unknown setting 'colour' (did you mean 'color'?); skipped",
        f"{path}, line 6: bell must be true/false; skipped",
        f"{path}, line 8: port must be between 1 and 65535; skipped",
        f"{path}, line 9: Invalid value (at column 8); skipped",
    ]


@pytest.mark.parametrize("text, says", [
    ('colour = true\n', "line 1: unknown setting 'colour' (did you mean 'color'?)"),
    ('hots = "a.example"\n', "line 1: unknown setting 'hots' (did you mean 'host'?)"),
    ('nick = "a"\n', "line 1: unknown setting 'nick' (known: host, port, user, "),
    ('port = "6000"\n', "line 1: port must be int"),
    ('port = true\n', "line 1: port must be int"),
    ('bell = "no"\n', "line 1: bell must be true/false"),
    ('\n\n  port = 70000\n', "line 3: port must be between 1 and 65535"),
    ('"port" = 70000\n', "line 1: port must be between 1 and 65535"),
    ('[server]\nport = 1\n', "line 1: unknown setting 'server'"),
    ('host = ""\n', "line 1: host must not be empty"),
    ('host = " "\n', "line 1: host must not be empty"),
    ('"' + "k" * 5000 + '" = 1\n', "line 1: unknown setting '" + "k" * 40 + "...' (known: "),
    ('"a\\u001b]0;x\\u0007" = 1\n', ": unknown setting 'a\\x1b]0;x\\x07'"),  # escaped
])
def test_a_wrong_setting_is_named_and_skipped(tmp_path, text, says):
    path = tmp_path / "config.toml"
    path.write_text(text)
    settings, problems = load_settings(path)
    assert settings == {}
    assert len(problems) == 1 and says in problems[0] and problems[0].endswith("; skipped")


@pytest.mark.parametrize("text, says", [
    ('port = \n', "Invalid value (at line 1, column 8)"),
    ('# settings\nport = \n\n', "Invalid value (at line 2, column 8)"),
    ('host = "a"\nport = [\n', "Invalid value (at end of document)"),
    ("".join(f"line {n}\n" for n in range(12)), "more than 10 lines are not TOML"),
    ('user = "caf\xe9"\n'.encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 11)"),
    (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    (b"# " + b"x" * (64 << 10) + b"\n", "larger than 64 KiB"),
    (b"[" + b"a." * 40_000 + b"b]\n", "larger than 64 KiB"),  # tomllib: 30 s at 100,000
])
def test_a_file_that_cannot_be_parsed_at_all_is_one_line_and_no_settings(tmp_path, text, says):
    path = tmp_path / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    settings, problems = load_settings(path)
    assert settings == {}
    assert len(problems) == 1, problems
    assert says in problems[0] and problems[0].startswith(f"{path}: ")
    assert "\n" not in problems[0] and problems[0].endswith("using the defaults")


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_settings_path_that_is_no_regular_file_is_one_line_and_no_wait(tmp_path, kind):
    """A FIFO nobody writes to would hold the start for good."""
    import os

    path = tmp_path / "config.toml"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    assert load_settings(path) == ({}, [f"{path}: not a regular file; using the defaults"])


def test_problems_past_twenty_are_counted_in_one_line(tmp_path):
    """A file of a thousand unknown settings (the wrong file) does not flood the screen."""
    path = tmp_path / "config.toml"
    path.write_text('user = "alice"\n' + "".join(f"k{n} = 1\n" for n in range(1000)))
    settings, problems = load_settings(path)
    assert settings == {"user": "alice"}
    assert len(problems) == 21
    assert problems[0].startswith(f"{path}, line 2: unknown setting 'k0'")
    assert problems[-1] == f"{path}: 980 more problems; skipped"


def test_a_byte_order_mark_costs_no_setting(tmp_path):
    """Editors that save 'UTF-8 with BOM' put U+FEFF first, which tomllib takes for the
    start of a statement: the first setting (often the host) was named as line 1's
    'Invalid statement' and skipped."""
    path = tmp_path / "config.toml"
    path.write_bytes(b'\xef\xbb\xbfhost = "chat.example.org"\r\nport = 6000\r\n')
    assert load_settings(path) == ({"host": "chat.example.org", "port": 6000}, [])


def test_a_settings_file_that_is_a_dangling_link_is_named(tmp_path):
    """A link to a file that is gone (a dotfiles checkout moved) is not 'no file': the
    user meant settings, and without them chatsh would quietly start a private server."""
    path = tmp_path / "config.toml"
    path.symlink_to(tmp_path / "dotfiles" / "chatsh.toml")
    assert load_settings(path) == ({}, [
        f"{path}: a link to {tmp_path / 'dotfiles' / 'chatsh.toml'}, which does not exist; "
        "using the defaults"])
