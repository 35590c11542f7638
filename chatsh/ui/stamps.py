"""``--timestamps``: the ``[12:34]`` before each line the shell shows and each prompt."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..texts import Fragments
from .display import Shown, as_fragments


class Stamps:
    """Time stamps in a ``strftime`` format, or none (``fmt`` None)."""

    def __init__(self, fmt: str | None) -> None:
        self.fmt = fmt

    def now(self) -> Fragments:
        """``[12:34] `` now; nothing without a format."""
        if not self.fmt:
            return []
        return [("class:timestamp", time.strftime(f"[{self.fmt}] "))]

    def on(self, lines: Sequence[Shown]) -> Sequence[Shown]:
        """Lines with the stamp of now before each (the same lines without a format)."""
        if not self.fmt:
            return lines
        stamp = self.now()
        return [[*stamp, *line] for line in as_fragments(lines)]
