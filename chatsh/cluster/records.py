"""How parcels travel between nodes: one published message per receiving node, a run
of records, one per recipient: ``<recipient> SP <length>\n`` and then ``length``
bytes of DELIVERY lines (the route script in :mod:`chatsh.cluster.scripts` writes
them). No redis here."""

from __future__ import annotations

from .. import protocol as p
from ..backplane import Parcel


def split_records(payload: bytes) -> list[Parcel]:
    """The parcels of a payload, in order; a malformed tail is dropped."""
    parcels = []
    start, end = 0, len(payload)
    while start < end:
        header_end = payload.find(b"\n", start)
        if header_end < 0:
            break
        recipient, _, length = payload[start:header_end].partition(b" ")
        if not length.isdigit():
            break
        start = header_end + 1 + int(length)
        parcels.append(Parcel(recipient.decode(p.ENCODING, "replace"),
                              payload[header_end + 1:start]))
    return parcels
