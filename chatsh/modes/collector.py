"""The garbage collector set for a session that makes and drops objects at a high rate.

Messages, events and lines are freed by reference counting as they go; the collector
only looks for cycles, and by default it does so every 700 new objects, walking again
what start-up made. A flood of lines spent a tenth of its instructions there.
"""

from __future__ import annotations

import gc

THRESHOLD = 50_000
"""New objects between two collections of the youngest ones (Python's default: 700)."""


def quiet_collector() -> None:
    """Leave what exists now out of collections, and collect less often."""
    gc.freeze()
    gc.set_threshold(THRESHOLD)
