"""Which addresses the server serves (``--allow CIDR``, repeatable): any other is closed
before a byte of the protocol."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def network(text: str) -> Network:
    """A CIDR block (``10.0.0.0/8``, ``2001:db8::/32``) or one address; ValueError, in one
    line, for anything else. Host bits may be set (``10.1.2.3/8`` is ``10.0.0.0/8``)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"not an address or CIDR block: {text!r}") from None


class Allowed:
    """The networks served; an IPv4 client seen as an IPv6-mapped address (on a dual-stack
    listener) is judged by its IPv4 address."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    def admits(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # not an IP address (a Unix socket): not among those allowed
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in block for block in self.networks)
