"""The settings file: what it sets, and one clear line when it cannot be used."""

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
    assert load_settings(tmp_path / "none.toml") == ({}, None)


def test_a_good_file_gives_its_settings(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('host = "chat.example.org"\nport = 6000\nuser = "alice"\n'
                    'timestamps = "%H:%M:%S"\nreconnect = true\nbell = false\n')
    assert load_settings(path) == ({"host": "chat.example.org", "port": 6000, "user": "alice",
                                    "timestamps": "%H:%M:%S", "reconnect": True,
                                    "bell": False}, None)


@pytest.mark.parametrize("text, says", [
    ('host = "a"\nport = \n', "line 2"),
    ('colour = true\n', "unknown setting 'colour'"),
    ('port = "6000"\n', "port must be int"),
    ('port = true\n', "port must be int"),
    ('bell = "no"\n', "bell must be true/false"),
    ('port = 70000\n', "between 1 and 65535"),
    ('user = "caf\xe9"\n'.encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 11)"),
    (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    (b"# " + b"x" * (1 << 20) + b"\n", "larger than 1 MiB"),
])
def test_a_bad_file_is_one_line_and_no_settings(tmp_path, text, says):
    path = tmp_path / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    settings, warning = load_settings(path)
    assert settings == {}
    assert warning is not None and says in warning and str(path) in warning
    assert "\n" not in warning and warning.endswith("using the defaults")


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_settings_path_that_is_no_regular_file_is_one_line_and_no_wait(tmp_path, kind):
    """A FIFO nobody writes to would hold the start for good."""
    import os

    path = tmp_path / "config.toml"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    settings, warning = load_settings(path)
    assert settings == {}
    assert warning == f"{path}: not a regular file; using the defaults"
