"""The shell's signals: SIGTERM, SIGHUP and SIGQUIT leave through the same door as
``!quit`` (the prompt unwinds and the terminal is restored); SIGINT never leaves.

While a prompt runs, prompt_toolkit takes SIGINT for the Ctrl-C key (the terminal is
raw, so only ``kill -INT`` sends one then); between prompts, as while a login waits
for its verdict, the handler here hears of it.
"""

from __future__ import annotations

import asyncio
import errno
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LEAVING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Signals:
    def __init__(self) -> None:
        self.left_by: int | None = None
        """The leaving signal received, if any (the exit status is 128 + it)."""

    @contextmanager
    def handled(self, interrupted: Callable[[], None]) -> Iterator[None]:
        """Within, on the running loop: a leaving signal cancels the current task, and
        SIGINT calls ``interrupted`` on the loop."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for signum in LEAVING_SIGNALS:
            loop.add_signal_handler(signum, self._leave, signum, task)
        previous = signal.signal(signal.SIGINT,
                                 lambda signum, frame: loop.call_soon_threadsafe(interrupted))
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def leaving_status(self, exc: BaseException) -> int | None:
        """The exit status when ``exc`` ends the shell: 128 + the leaving signal received,
        or + SIGHUP for a terminal that hung up (every read and write on it fails with
        EIO, which may come before the SIGHUP is handled); None for anything else."""
        if self.left_by is not None:
            return 128 + self.left_by
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            return 128 + signal.SIGHUP
        return None

    def _leave(self, signum: int, task: asyncio.Task[object] | None) -> None:
        self.left_by = signum
        if task is not None:
            task.cancel()
