"""What the server counts as it serves, as plain integers: a count costs one addition on
the server's path, and a scrape of the metrics reads them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

REFUSAL_REASONS = {
    "address": "the address is not in --allow",
    "tls_handshake": "the TLS handshake failed",
    "client_certificate": "no client certificate, or one not signed by --tls-client-ca",
    "waiting_full": "the oldest of too many connections waiting to log in",
    "login_deadline": "not logged in by the login deadline",
    "refused_logins": "too many refused logins on one connection",
}
"""Why the server closes a connection before its user is in, by the label counted."""


@dataclass
class ServerStats:
    refusals: Counter[str] = field(default_factory=Counter)
    """Connections closed by the server before a login, by reason
    (:data:`REFUSAL_REASONS`)."""
