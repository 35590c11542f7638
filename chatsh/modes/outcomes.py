"""Exit statuses and login verdicts shared by the front ends."""

from __future__ import annotations

from .. import protocol as p
from .. import texts

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONNECT = 2
EXIT_LOST = 3


def login_failure(user: str, verdict: p.ServerEvent | None) -> tuple[bool, texts.Fragments]:
    """The line to print for a refused login, and whether retrying is pointless."""
    if isinstance(verdict, p.Busy):
        return True, texts.error(texts.SERVER_FULL)
    if isinstance(verdict, p.InUse):
        return False, texts.name_in_use(user)
    if isinstance(verdict, p.BadRequestBody):
        return False, texts.name_disallowed(user)
    if isinstance(verdict, p.BadRequestHeader):
        return False, texts.error(texts.BAD_HEADER)
    if verdict is None:
        return False, texts.error(texts.CONNECTION_LOST)
    return False, texts.error(f"Cannot log in as {user}: unexpected answer from the server.")
