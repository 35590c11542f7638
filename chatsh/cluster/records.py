"""How parcels travel between nodes: one inbox entry per receiving node, a run of
records, one per recipient: ``<recipient> SP <length>\n`` and then ``length`` bytes
of DELIVERY lines (the route script in :mod:`chatsh.cluster.scripts` writes them).
Whatever the engine holds may have been written by anyone, so every record is
checked and what is not well formed is dropped. No redis here."""

from __future__ import annotations

from .. import protocol as p
from ..backplane import Parcel
from ..names import MAX_NAME_LENGTH

MAX_LENGTH_DIGITS = 12
"""Digits of a record's length: far above any line cap, and never a huge number."""


def well_formed(lines: bytes) -> bool:
    """Whether ``lines`` is one or more whole ``DELIVERY`` lines, each ending in
    ``\n`` (counted, not split, so a 64 MiB line costs two passes at C speed)."""
    return (lines.startswith(p.DELIVERY_HEAD) and lines.endswith(b"\n")
            and lines.count(b"\n") == lines.count(b"\n" + p.DELIVERY_HEAD) + 1)


def split_records(payload: bytes) -> tuple[list[Parcel], int]:
    """The well-formed parcels of a payload, in order, and how many records were
    dropped (a malformed header ends the payload: what follows counts as one)."""
    parcels: list[Parcel] = []
    dropped = 0
    start, end = 0, len(payload)
    while start < end:
        header_end = payload.find(b"\n", start, start + 4 * MAX_NAME_LENGTH + 32)
        recipient, _, length = payload[start:max(header_end, start)].partition(b" ")
        if (header_end < 0 or not recipient or not length.isdigit()
                or len(length) > MAX_LENGTH_DIGITS
                or header_end + 1 + int(length) > end):
            return parcels, dropped + 1
        start = header_end + 1 + int(length)
        lines = payload[header_end + 1:start]
        if well_formed(lines):
            parcels.append(Parcel(recipient.decode(p.ENCODING, "replace"), lines))
        else:
            dropped += 1
    return parcels, dropped
