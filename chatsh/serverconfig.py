"""What ``chatsh serve`` is told: its bounds and its manners, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from .backplane import MAX_LISTED
from .defaults import DEFAULT_MAX_LINE
from .limits import (
    DEFAULT_MAX_PENDING,
    DEFAULT_MAX_PENDING_PER_ADDRESS,
    DEFAULT_MAX_REFUSALS,
    DEFAULT_MAX_TOTAL_QUEUE,
    PENDING_GRACE,
    clients_per_address,
)
from .serverlog import LOG_BURST, LOG_WINDOW, LOGIN_BURST

DEFAULT_MAX_CLIENTS = 64
HANDSHAKE_TIMEOUT = 60.0


@dataclass
class ServerConfig:
    max_clients: int = DEFAULT_MAX_CLIENTS
    max_clients_per_address: int = 0
    """Users logged in from one address (an IPv6 /64) at once; one more gets BUSY.
    0 means three quarters of ``max_clients`` (:func:`~chatsh.limits.clients_per_address`)."""
    max_line: int = DEFAULT_MAX_LINE
    max_queue: int = 0
    """Unsent bytes a connection may have queued; 0 means two full lines and 1 MiB."""
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    max_total_queue: int = DEFAULT_MAX_TOTAL_QUEUE
    """Unsent bytes all slow readers together may have queued; the slowest go first."""
    max_pending: int = DEFAULT_MAX_PENDING
    """Connections not logged in yet; one more closes the oldest of them."""
    max_pending_per_address: int = DEFAULT_MAX_PENDING_PER_ADDRESS
    """Connections not logged in yet from one address; one more closes its oldest."""
    pending_grace: float = PENDING_GRACE
    """Seconds a connection waits to log in before a newer one may push it out."""
    max_listed: int = MAX_LISTED
    """Names a LIST-OK gives at most, echobot among them."""
    close_on_refusal: bool = False
    """Close the connection after IN-USE or a refused name instead of waiting for
    another HELLO-FROM on it (BUSY and a bad header always close)."""
    max_refusals: int = DEFAULT_MAX_REFUSALS
    """Refused logins a connection may have: the last is answered, then it closes."""
    log_burst: int = LOG_BURST
    log_window: float = LOG_WINDOW
    """Lines about one address the log takes in a window of seconds; then one line
    says how many were left out."""
    login_log_burst: int = LOGIN_BURST
    """Logins from one address the log takes in a window, each with its logout; then
    one line says how many were left out."""

    def __post_init__(self) -> None:
        if not self.max_clients_per_address:
            self.max_clients_per_address = clients_per_address(self.max_clients)
        if not self.max_queue:
            self.max_queue = 2 * self.max_line + 1024 * 1024
