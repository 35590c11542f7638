"""The shell's settings file: ``$XDG_CONFIG_HOME/chatsh/config.toml``.

Read with :mod:`tomllib`. Command-line flags win, then ``CHATSH_HOST`` and
``CHATSH_PORT``, then the file. A file that cannot be read or holds something
wrong (not UTF-8, nested too deeply, larger than 1 MiB, not a regular file) gives
one line naming the file (and the line, for a syntax error), and chatsh starts with
its defaults. Only the interactive shell reads it: a script
runs the same whatever the file says.
"""

from __future__ import annotations

import argparse
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

SETTINGS: dict[str, tuple[type, ...]] = {
    "host": (str,),
    "port": (int,),
    "user": (str,),
    "timestamps": (str, bool),
    "reconnect": (bool,),
    "bell": (bool,),
    "log": (str,),
    "color": (bool,),
    "history": (bool,),
}
"""Each setting and the TOML types it takes (``timestamps = true`` means ``%H:%M``)."""


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".config")
    return Path(base) / "chatsh" / "config.toml"


MAX_SIZE = 1024 * 1024
"""Bytes past which a settings file is refused (a few lines are all it needs)."""


def _read(path: Path) -> bytes:
    """The file's bytes; OSError with a reason for one that is no regular file (a FIFO
    would hold the start until someone writes to it) or too large to be settings."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        data = b""
        while chunk := os.read(fd, MAX_SIZE + 1 - len(data)):
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_SIZE:
        raise OSError(0, "larger than 1 MiB")
    return data


def load_settings(path: Path | None = None) -> tuple[dict[str, Any], str | None]:
    """The settings of the file (none if it does not exist), and a one-line warning when
    it could not be used; then no setting of it counts."""
    path = path or config_path()
    try:
        found = tomllib.loads(_read(path).decode("utf-8"))
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"{path}: {exc.strerror or exc}; using the defaults"
    except UnicodeDecodeError as exc:
        return {}, (f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                    f"{exc.start}); using the defaults")
    except tomllib.TOMLDecodeError as exc:
        return {}, f"{path}: {exc}; using the defaults"
    except RecursionError:
        return {}, f"{path}: arrays or tables nested too deeply; using the defaults"
    for name, value in found.items():
        types = SETTINGS.get(name)
        if types is None:
            known = ", ".join(SETTINGS)
            return {}, f"{path}: unknown setting {name!r} (known: {known}); using the defaults"
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            kinds = " or ".join("true/false" if kind is bool else kind.__name__
                                for kind in types)
            return {}, f"{path}: {name} must be {kinds}; using the defaults"
    if "port" in found and not 0 < found["port"] < 65536:
        return {}, f"{path}: port must be between 1 and 65535; using the defaults"
    return found, None


def fill_in(args: argparse.Namespace) -> None:
    """Fill in the shell's options from the settings file where neither a flag nor the
    environment gave one; ``args.settings_warning`` says why the file did not count."""
    settings, args.settings_warning = load_settings()
    if args.host is None and not os.environ.get("CHATSH_HOST"):
        args.host = settings.get("host")
    if args.port is None and not os.environ.get("CHATSH_PORT"):
        args.port = settings.get("port")
    args.user = args.user if args.user is not None else settings.get("user")
    if args.timestamps is None and settings.get("timestamps"):
        stamps = settings["timestamps"]
        args.timestamps = "%H:%M" if stamps is True else stamps
    if args.log is None and settings.get("log"):
        args.log = os.path.expanduser(settings["log"])
    if args.reconnect is None:
        args.reconnect = settings.get("reconnect", True)
    args.no_bell = args.no_bell or settings.get("bell") is False
    args.no_color = args.no_color or settings.get("color") is False
    args.no_history = args.no_history or settings.get("history") is False
