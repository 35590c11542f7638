"""Files that are the user's alone: a log, the message store, the history.

A file is created readable and writable by its owner only (0600); one found readable
or writable by others is made so, and the caller is told what it was. Anything that is
no regular file is refused: opening a FIFO without a reader would hold the shell.
"""

from __future__ import annotations

import os
import stat


def open_private(path: str | os.PathLike[str], flags: int) -> tuple[int, int | None]:
    """A descriptor of ``path`` opened with ``flags`` (and created 0600, blocking), and
    the mode it had when others could read or write it (it is 0600 now), else None.
    OSError with a reason for a file that is not a regular file."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise OSError(0, "not a regular file")
    fd = os.open(path, flags | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # found there after the look
            raise OSError(0, "not a regular file")
        os.set_blocking(fd, True)
        if mode & 0o077:
            os.fchmod(fd, 0o600)
            return fd, stat.S_IMODE(mode)
    except OSError:
        os.close(fd)
        raise
    return fd, None
