"""What the server writes into its log: lines with a prefix on stderr, names cut and
escaped so that no client decides what the log holds."""

from __future__ import annotations

import sys
from collections.abc import Callable

from . import protocol as p
from .sanitize import sanitize

Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    print(f"chatsh serve: {message}", file=sys.stderr, flush=True)


LOGGED_NAME_LENGTH = 64


def logged_name(name: str | bytes) -> str:
    """A name as a log shows it: cut to a bounded length before anything else, escaped."""
    limit = LOGGED_NAME_LENGTH
    text = name[:4 * limit].decode(p.ENCODING, "replace") if isinstance(
        name, bytes) else name[:4 * limit]
    if len(text) > limit or len(name) > 4 * limit:
        return f"{sanitize(text[:limit])}... ({len(name)} long)"
    return sanitize(text)


def no_log(message: str) -> None:
    """Discard log lines (the embedded server keeps the terminal clean)."""
