"""Cases about the byte stream, errors, connection lifecycle and concurrency."""

from __future__ import annotations

from .cases import CaseRun, Context, case, wait_until
from .probe import CaseFailure, shown


@case("framing.one-byte-writes", "a request split into 1-byte writes is understood")
def _one_byte(ctx: Context) -> None:
    probe = ctx.probe()
    name = ctx.name()
    for byte in f"HELLO-FROM {name}\nSEND echobot split\n".encode():
        probe.send(bytes([byte]))
    probe.expect(f"HELLO {name}".encode())
    probe.expect(b"SEND-OK")
    probe.expect(b"DELIVERY echobot split")


@case("framing.pipelined", "several requests in one write are all answered, in order")
def _pipelined(ctx: Context) -> None:
    name, probe = ctx.user()
    probe.send(f"SEND echobot one\nSEND {ctx.name('nobody')} two\nSEND echobot three\n".encode())
    for expected in (b"SEND-OK", b"DELIVERY echobot one", b"BAD-DEST-USER", b"SEND-OK",
                     b"DELIVERY echobot three"):
        probe.expect(expected)


@case("framing.utf8-split", "a character split across two writes arrives whole")
def _utf8_split(ctx: Context) -> None:
    _, probe = ctx.user()
    data = "SEND echobot é名👍\n".encode()
    cut = data.index("名".encode()) + 1
    probe.send(data[:cut])
    probe.send(data[cut:])
    probe.expect(b"SEND-OK")
    probe.expect("DELIVERY echobot é名👍".encode())


def _large(size: int) -> CaseRun:
    def run(ctx: Context) -> None:
        _, probe = ctx.user()
        body = (b"0123456789abcdef" * (size // 16 + 1))[:size - 3] + b"END"
        probe.send(b"SEND echobot " + body + b"\n")
        probe.expect(b"SEND-OK")
        line = probe.read_line()
        if line != b"DELIVERY echobot " + body:
            got = "the connection closed" if line is None else f"{len(line)} bytes: {shown(line)}"
            raise CaseFailure(f"the {size >> 20} MiB message echoed whole", got, probe.sent)
    return run


case("framing.one-mib", "a 1 MiB message arrives whole", weight=2)(_large(1 << 20))
case("framing.sixteen-mib", "a 16 MiB message arrives whole", weight=6)(_large(16 << 20))


@case("errors.unknown-header", "an unknown request gets BAD-RQST-HDR; the session goes on")
def _unknown(ctx: Context) -> None:
    _, probe = ctx.user()
    probe.send(b"FROBNICATE now\n")
    probe.expect(b"BAD-RQST-HDR")
    probe.send(b"SEND echobot after\n")
    probe.expect(b"SEND-OK")


def freed(abrupt: bool, elsewhere: bool = False) -> CaseRun:
    """A name is free again once its user has gone (``elsewhere``: on the other node)."""

    def run(ctx: Context) -> None:
        name, first = ctx.user()
        if elsewhere:
            held = ctx.probe(on_peer=True)
            held.send(f"HELLO-FROM {name}\n".encode())
            held.expect(b"IN-USE", f"IN-USE while {name} is logged in on the first node")
        first.abort() if abrupt else first.close()
        attempts: list[bytes | None] = []

        def free_again() -> bool:
            probe = ctx.probe(on_peer=elsewhere)
            probe.send(f"HELLO-FROM {name}\n".encode())
            attempts.append(probe.read_line())
            return attempts[-1] == f"HELLO {name}".encode()

        wait_until(free_again, ctx, f"HELLO {name} once the first connection is gone",
                   lambda: shown(attempts[-1] or b"closed") if attempts else "no attempt")
    return run


case("lifecycle.freed-clean", "a name is free again after a clean close")(freed(False))
case("lifecycle.freed-abrupt", "a name is free again after an abrupt reset")(freed(True))


@case("concurrency.fifty-clients", "50 clients exchange messages: none lost or misrouted",
      weight=3)
def _fifty(ctx: Context) -> None:
    users = [ctx.user("cc") for _ in range(50)]
    for index, (_, probe) in enumerate(users):
        target = users[(index + 7) % 50][0]
        probe.send(f"SEND {target} from {index}\n".encode())
    for index, (name, probe) in enumerate(users):
        sender = users[(index - 7) % 50][0]
        got = sorted(line for line in (probe.read_line(), probe.read_line()) if line)
        want = sorted([b"SEND-OK", f"DELIVERY {sender} from {(index - 7) % 50}".encode()])
        if got != want:
            raise CaseFailure(f"SEND-OK and one DELIVERY from {sender} for {name}",
                              " | ".join(shown(line) for line in got) or "nothing")
