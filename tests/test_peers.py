"""The shell and scripts on servers that differ from chatsh serve as published servers do
(tests/broken_server.py's faults), in a pseudo-terminal or as a script's run."""

from __future__ import annotations

import pytest
from broken_server import BrokenServer
from conftest import RawClient, made_by


@pytest.fixture
def broken_factory():
    with made_by(BrokenServer, BrokenServer.stop) as make:
        yield make


def test_a_retry_refused_with_a_header_error_logs_in_on_a_new_connection(
        broken_factory, term_factory):
    """A server that keeps the connection after IN-USE but answers every later HELLO-FROM
    on it with BAD-RQST-HDR: the retry goes on a new connection, as after a close, and the
    user sees the lines of a normal retry, nothing about headers."""
    server = broken_factory("hdr-after-refusal")
    holders = [RawClient(server.port) for _ in range(2)]
    assert holders[0].login("bob") == b"HELLO bob"
    assert holders[1].login("carol") == b"HELLO carol"
    term = term_factory("--port", str(server.port))
    term.wait_text("login:")
    term.enter("bob")
    term.wait_text("Cannot log in as bob. That username is already in use.")
    term.enter("carol")  # taken as well: refused as a taken name, on the new connection
    term.wait_text("Cannot log in as carol. That username is already in use.")
    term.enter("dave")
    term.wait_text("Successfully logged in as dave!")
    assert "header" not in term.screen_text
    term.enter("!who")
    term.wait_text("There are 4 online users:")
    for holder in holders:
        holder.close()
