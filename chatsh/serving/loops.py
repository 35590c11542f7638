"""The event loop ``chatsh serve`` runs on: uvloop's when it is installed (the extra
``chatshell[fast]``), else asyncio's own; ``CHATSH_EVENT_LOOP=asyncio`` (or ``uvloop``)
chooses. The server is the same on both; uvloop's transports take less CPU a message and
less memory a connection."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

EventLoopFactory = Callable[[], asyncio.AbstractEventLoop]
CHOICE = "CHATSH_EVENT_LOOP"


def event_loop() -> tuple[EventLoopFactory, str]:
    """How to make the loop, and a few words that say which one it is."""
    wanted = os.environ.get(CHOICE, "")
    if wanted != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            version: str = getattr(uvloop, "__version__", "")
            return uvloop.new_event_loop, f"uvloop's {version}".rstrip()
    why = f"{CHOICE}=asyncio" if wanted == "asyncio" else (
        "pip install 'chatshell[fast]' for uvloop's")
    return asyncio.new_event_loop, f"asyncio's ({why})"


def closes_what_it_cannot_accept(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop``, out of descriptors, closes new connections at once (libuv's way,
    so uvloop's) rather than leaving them queued in the kernel (asyncio's)."""
    return type(loop).__module__.startswith("uvloop")
