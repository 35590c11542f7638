"""The shell's settings file: ``$XDG_CONFIG_HOME/chatsh/config.toml``.

Read with :mod:`tomllib`. Command-line flags win, then ``CHATSH_HOST`` and
``CHATSH_PORT``, then the file. Every valid setting counts; a line that is not TOML
and a wrong setting are each named in a line of their own (with the line number)
and skipped. A file that cannot be read or parsed at all (not UTF-8, nested too
deeply, larger than 64 KiB, not a regular file, a link to nothing, an unterminated
array) gives one line naming the file, and chatsh starts with its defaults. A byte
order mark some editors write first is no problem. A file with a problem
never makes chatsh pick a server by default. Only the interactive shell reads it:
a script runs the same whatever the file says.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from .sanitize import sanitize

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
    "store": (bool,),
}
"""Each setting and the TOML types it takes (``timestamps = true`` means ``%H:%M``)."""


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".config")
    return Path(base) / "chatsh" / "config.toml"


MAX_SIZE = 64 * 1024
"""Bytes past which a settings file is refused: a few lines are all it needs, and
tomllib takes time in the square of a dotted key's length (30 s for 200 KB)."""


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
        raise OSError(0, "larger than 64 KiB")
    return data


MAX_SKIPPED = 10
"""Lines that are not TOML past which a file is no settings file at all."""
MAX_SAID = 20
"""Problems named one by one; the rest are counted in one line."""
MAX_NAME = 40
"""Characters of an unknown setting's name that its problem shows."""
_WHERE = re.compile(r" \(at line (\d+), column (\d+)\)$")
"""Where tomllib says a syntax error is."""


def load_settings(path: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """The settings of the file (none if it does not exist) and its problems, one line
    each: a line that is not TOML and a wrong setting are named and skipped, and every
    other setting counts; a file that cannot be read or parsed at all is one line, and
    then no setting of it counts."""
    path = path or config_path()
    try:
        lines = _read(path).decode("utf-8").removeprefix("\ufeff").splitlines(keepends=True)
    except FileNotFoundError:
        if os.path.islink(path):  # meant as settings: not the same as no file
            return {}, [f"{path}: a link to {sanitize(os.readlink(path))}, which does not exist; "
                        "using the defaults"]
        return {}, []
    except OSError as exc:
        return {}, [f"{path}: {exc.strerror or exc}; using the defaults"]
    except UnicodeDecodeError as exc:
        return {}, [f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                    f"{exc.start}); using the defaults"]
    found, skipped = _parse(path, lines)
    if isinstance(found, str):
        return {}, [found]
    problems = list(skipped.items())
    settings: dict[str, Any] = {}
    for name, value in found.items():
        problem = _problem(name, value)
        if problem is None:
            settings[name] = value
            continue
        line = _line_of(name, lines)
        problems.append((line, f"{path}, line {line}: {problem}; skipped" if line else
                         f"{path}: {problem}; skipped"))
    said = [problem for _, problem in sorted(problems)]
    if len(said) > MAX_SAID:
        said[MAX_SAID:] = [f"{path}: {len(said) - MAX_SAID} more problems; skipped"]
    return settings, said


def _parse(path: Path, lines: list[str]) -> tuple[dict[str, Any] | str, dict[int, str]]:
    """The file's TOML with each line that is not TOML left out, and those lines' problems
    by line number; or, for a file that cannot be parsed at all, the one line saying why."""
    skipped: dict[int, str] = {}
    first = ""
    while True:
        try:
            found = tomllib.loads("".join(lines))
        except tomllib.TOMLDecodeError as exc:
            where = _WHERE.search(str(exc))
            first = first or str(exc)
            number = int(where[1]) if where else 0
            if not where or not lines[number - 1].strip() or len(skipped) == MAX_SKIPPED:
                more = (f"; more than {MAX_SKIPPED} lines are not TOML"
                        if len(skipped) == MAX_SKIPPED else "")
                return f"{path}: {first}{more}; using the defaults", skipped
            message = str(exc)[:where.start()]
            skipped[number] = f"{path}, line {number}: {message} (at column {where[2]}); skipped"
            lines[number - 1] = "\n"  # the line numbers of the others stay
            continue
        except RecursionError:
            return f"{path}: arrays or tables nested too deeply; using the defaults", skipped
        if skipped and not found:
            return f"{path}: {first}; using the defaults", skipped
        return found, skipped


def _problem(name: str, value: object) -> str | None:
    """What is wrong with setting ``name`` to ``value``, if anything."""
    types = SETTINGS.get(name)
    if types is None:
        import difflib  # only for a file with a problem: start-up is a speed target

        shown = name if len(name) <= MAX_NAME else name[:MAX_NAME] + "..."
        close = difflib.get_close_matches(shown, SETTINGS, n=1)
        return f"unknown setting {shown!r} " + (f"(did you mean {close[0]!r}?)" if close
                                                else f"(known: {', '.join(SETTINGS)})")
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        kinds = " or ".join("true/false" if kind is bool else kind.__name__ for kind in types)
        return f"{name} must be {kinds}"
    if name == "port" and isinstance(value, int) and not 0 < value < 65536:
        return "port must be between 1 and 65535"
    if name == "host" and not str(value).strip():
        return "host must not be empty"  # else it would count as no host: a private server
    return None


def _line_of(name: str, lines: list[str]) -> int:
    """The number of the line that sets ``name`` (or opens its table); 0 if none does."""
    key = re.compile(rf"""\s*\[*\s*(?:{re.escape(name)}|"{re.escape(name)}"|'{re.escape(name)}')"""
                     r"\s*[=.\]]")
    return next((number for number, line in enumerate(lines, 1) if key.match(line)), 0)


def fill_in(args: argparse.Namespace) -> str | None:
    """Fill in the shell's options from the settings file where neither a flag nor the
    environment gave one; ``args.settings_problems`` names what in the file did not count.

    Returns why chatsh must not connect, when the file has a problem and nothing names
    a host: the host it meant may be the line skipped, and a default (a private server,
    or 127.0.0.1 with a port from the flag, the environment or the file) would land the
    user, unknowing, alone.
    """
    settings, args.settings_problems = load_settings()
    named = bool(args.host or os.environ.get("CHATSH_HOST"))
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
    args.no_store = args.no_store or settings.get("store") is False
    if named or "host" in settings or not args.settings_problems:
        return None
    return ("chatsh: no host to connect to: the settings file has a problem and names no "
            "host, so chatsh guesses none (no private server, no 127.0.0.1); fix the file, "
            "or give --host (e.g. --host 127.0.0.1)")
