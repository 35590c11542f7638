"""Cases about the byte stream, errors, connection lifecycle and concurrency.

None of them needs echobot: one user sends to another."""

from __future__ import annotations

import threading
import time

from ..words import Word
from .cases import CaseRun, Context, ask_until, case, refused_header
from .probe import CaseFailure, DeadlinePassed, Probe, is_line, shown, spelt

CROWD = 50
"""Users in the concurrency case, unless the server takes fewer."""


@case("framing.one-byte-writes", "a request split into 1-byte writes is understood")
def _one_byte(ctx: Context) -> None:
    recipient_name, recipient = ctx.user()
    probe = ctx.probe()
    name = ctx.name()
    for byte in b"".join((spelt(Word.HELLO_FROM, name), b"\n",
                          spelt(Word.SEND, recipient_name, "split"), b"\n")):
        probe.send(bytes([byte]))
    probe.expect(spelt(Word.HELLO, name))
    probe.expect(spelt(Word.SEND_OK))
    recipient.expect(spelt(Word.DELIVERY, name, "split"))


@case("framing.pipelined", "several requests in one write are all answered, in order")
def _pipelined(ctx: Context) -> None:
    name, probe = ctx.user()
    recipient_name, recipient = ctx.user()
    requests = (spelt(Word.SEND, recipient_name, "one"),
                spelt(Word.SEND, ctx.name("nobody"), "two"), spelt(Word.LIST),
                spelt(Word.SEND, recipient_name, "three"))
    probe.send(b"".join(request + b"\n" for request in requests))
    probe.expect(spelt(Word.SEND_OK))
    probe.expect(spelt(Word.BAD_DEST_USER))
    line = probe.read_line()
    if not is_line(line, Word.LIST_OK):
        raise CaseFailure("LIST-OK as the third reply", probe.arrived(line), probe.sent)
    probe.expect(spelt(Word.SEND_OK))
    for body in ("one", "three"):
        recipient.expect(spelt(Word.DELIVERY, name, body))


@case("framing.utf8-split", "a character split across two writes arrives whole")
def _utf8_split(ctx: Context) -> None:
    name, probe = ctx.user()
    recipient_name, recipient = ctx.user()
    data = spelt(Word.SEND, recipient_name, "é名👍") + b"\n"
    cut = data.index("名".encode()) + 1
    probe.send(data[:cut])
    probe.send(data[cut:])
    probe.expect(spelt(Word.SEND_OK))
    recipient.expect(spelt(Word.DELIVERY, name, "é名👍"))


def _send_in_background(probe: Probe, data: bytes) -> list[CaseFailure]:
    """Write ``data`` from another thread while this one reads, so that neither side
    waits for the other; the list gets the write's failure, if any."""
    failures: list[CaseFailure] = []

    def write() -> None:
        try:
            probe.send(data)
        except CaseFailure as failure:
            failures.append(failure)

    threading.Thread(target=write, daemon=True).start()
    return failures


def _taken(probe: Probe, size: int) -> str:
    """What is known of a large request the server did not pass on: how much of it the
    connection took, and what the sender got meanwhile."""
    took = size - probe.unsent
    amount = f"all {took} bytes" if took == size else f"{took} of the {size} bytes"
    known = (f"the connection took {amount} of the SEND (how many of them the server read "
             "is not known: the kernel buffers some)")
    answers = probe.arrived_so_far()
    if answers:
        known += "; the sender got " + " | ".join(map(shown, answers))
    return known


def _large(size: int) -> CaseRun:
    def run(ctx: Context) -> None:
        name, probe = ctx.user()
        recipient_name, recipient = ctx.user()
        start = time.monotonic()
        body = (b"0123456789abcdef" * (size // 16 + 1))[:size - 3] + b"END"
        request = spelt(Word.SEND, recipient_name, body) + b"\n"
        failures = _send_in_background(probe, request)
        expected = f"the {size >> 20} MiB message delivered whole"
        try:
            line = recipient.read_line()
        except DeadlinePassed as failure:
            if failures:
                raise failures[0] from None
            raise CaseFailure(expected, f"no DELIVERY in {time.monotonic() - start:.1f} s; "
                              f"{_taken(probe, len(request))}", probe.sent) from failure
        if line != spelt(Word.DELIVERY, name, body):
            got = recipient.arrived(line) if line is None else (
                f"{len(line)} bytes: {shown(line)}")
            raise CaseFailure(expected, got, probe.sent)
        probe.expect(spelt(Word.SEND_OK))
    return run


case("errors.unknown-header", "an unknown request gets BAD-RQST-HDR; the session goes on")(
    refused_header(lambda ctx: b"FROBNICATE now"))


def freed(abrupt: bool, elsewhere: bool = False) -> CaseRun:
    """A name is free again once its user has gone (``elsewhere``: on the other node)."""

    def run(ctx: Context) -> None:
        name, first = ctx.user()
        if elsewhere:
            held = ctx.probe(on_peer=True)
            held.say(Word.HELLO_FROM, name)
            held.expect(spelt(Word.IN_USE), f"IN-USE while {name} is logged in on the first node")
        first.abort() if abrupt else first.close()
        ask_until(lambda: ctx.probe(on_peer=elsewhere).request(Word.HELLO_FROM, name),
                  spelt(Word.HELLO, name).__eq__, ctx,
                  f"HELLO {name} once the first connection is gone")
    return run


case("lifecycle.freed-clean", "a name is free again after a clean close")(freed(False))
case("lifecycle.freed-abrupt", "a name is free again after an abrupt reset")(freed(True))


def _crowd(ctx: Context) -> list[tuple[str, Probe]]:
    """Up to CROWD logged-in users: as many as --max-clients leaves room for, or as many
    as the server takes before it answers BUSY."""
    wanted = CROWD if ctx.max_clients is None else min(CROWD, ctx.max_clients)
    users: list[tuple[str, Probe]] = []
    while len(users) < wanted:
        name, probe = ctx.name("cc"), ctx.probe()
        probe.say(Word.HELLO_FROM, name)
        reply = probe.expect_one_of((spelt(Word.HELLO, name), spelt(Word.BUSY)))
        if reply == spelt(Word.BUSY):
            ctx.note(f"the server took {len(users)} more users, then answered BUSY; "
                     f"checked with {len(users)}")
            break
        users.append((name, probe))
    if len(users) < 2:
        raise CaseFailure("room for two users", f"BUSY after {len(users)}")
    return users


@case("concurrency.fifty-clients", f"{CROWD} clients (or as many as the server takes) "
      "exchange messages: none lost or misrouted", weight=3)
def _fifty(ctx: Context) -> None:
    users = _crowd(ctx)
    count, step = len(users), 7 % len(users) or 1
    for index, (_, probe) in enumerate(users):
        probe.say(Word.SEND, users[(index + step) % count][0], f"from {index}")
    for index, (name, probe) in enumerate(users):
        sender = (index - step) % count
        want = [spelt(Word.SEND_OK), spelt(Word.DELIVERY, users[sender][0], f"from {sender}")]
        probe.expect_unordered(want, f"SEND-OK and one DELIVERY from {users[sender][0]} "
                               f"for {name}")


# the large messages last: a server that is slow with them holds up nothing else
case("framing.one-mib", "a 1 MiB message arrives whole", weight=2)(_large(1 << 20))
case("framing.sixteen-mib", "a 16 MiB message arrives whole", weight=6)(_large(16 << 20))
