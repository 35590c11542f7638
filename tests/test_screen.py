"""The shell's screen in a pseudo-terminal: completion, narrow terminals, resizes."""

from __future__ import annotations

from conftest import RawClient
from terminal import Terminal


def log_in(term: Terminal, name: str) -> None:
    term.wait_text("login:")
    term.enter(name)
    term.wait_text(f"Successfully logged in as {name}!")


def test_tab_after_a_comma_completes_the_next_recipient(server, term_factory):
    """``@bob,ca`` + Tab gives ``@bob,carol ``, and the line goes to both."""
    peers = {name: RawClient(server.port) for name in ("bob", "carol")}
    for name, peer in peers.items():
        assert peer.login(name) == f"HELLO {name}".encode()
    term = term_factory("--port", str(server.port))
    log_in(term, "ann")
    term.enter("!who")
    term.wait_text("There are 4 online users:")
    term.type("@bob,ca\t")
    term.wait_text("ann> @bob,carol")
    term.enter("both of you")
    for peer in peers.values():
        assert peer.read_line() == b"DELIVERY ann both of you"
