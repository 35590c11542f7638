"""What the server counts as it serves, as plain integers: a count costs one addition on
the server's path, and a scrape of the metrics reads them."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from ..words import CURRENT, Word

REFUSAL_REASONS = {
    "address": "the address is not in --allow",
    "tls_handshake": "the TLS handshake failed",
    "client_certificate": "no client certificate, or one not signed by --tls-client-ca",
    "waiting_full": "the oldest of too many connections waiting to log in",
    "login_deadline": "not logged in by the login deadline",
    "refused_logins": "too many refused logins on one connection",
    "address_full": "its address has --max-clients-per-address users logged in (BUSY)",
    "long_login_line": "a line too long to be a login, before logging in",
}
"""Why the server closes a connection before its user is in, by the label counted."""


LOGGED_IN = CURRENT.spelling[Word.HELLO]
"""What :attr:`ServerStats.logins` counts a login let in under."""

@dataclass(slots=True)
class ServerStats:
    logins: Counter[bytes] = field(default_factory=Counter)
    """Login answers: :data:`LOGGED_IN` for each user let in, else the refusal's reply
    line."""
    sends: int = 0
    """SEND requests of logged-in users (the one count on a message's path)."""
    undelivered: int = 0
    """SEND requests answered BAD-DEST-USER: the others were handed on (SEND-OK)."""
    requests: Counter[type] = field(default_factory=Counter)
    """The other requests of logged-in users, by the class their line parses to."""
    bytes_in: int = 0
    bytes_out: int = 0
    slow_readers: int = 0
    """Connections dropped because they did not read what was sent to them."""
    refusals: Counter[str] = field(default_factory=Counter)
    """Connections closed by the server before a login, by reason
    (:data:`REFUSAL_REASONS`)."""


ENGINE_CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                       1.0, 2.5, 5.0, 10.0)
"""Upper bounds in seconds of the buckets the cluster engine's round trips are counted in."""


class Histogram:
    """Durations counted into fixed buckets as they come (an observation is a bisection
    and two additions); a scrape reads the counts."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        """Upper bounds in seconds, ascending; one more bucket holds everything above."""
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
