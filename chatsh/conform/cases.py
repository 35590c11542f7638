"""The conformance cases, by area; each id is stable across releases."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import protocol as p
from .probe import CaseFailure, CaseSkipped, Probe, shown


@dataclass
class Context:
    """What a case may use: the server's address, its deadline, fresh names."""

    host: str
    port: int
    timeout: float
    max_clients: int | None = None
    peer: tuple[str, int] | None = None
    """Another node of the same cluster, for the ``peer`` cases."""
    deadline: float = 0.0
    probes: list[Probe] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def probe(self, on_peer: bool = False) -> Probe:
        """A connection to the server, or with ``on_peer`` to the other node."""
        host, port = self.peer if on_peer and self.peer else (self.host, self.port)
        probe = Probe(host, port, self.deadline)
        self.probes.append(probe)
        return probe

    def user(self, prefix: str = "cf", on_peer: bool = False) -> tuple[str, Probe]:
        """A fresh logged-in user."""
        name = self.name(prefix)
        probe = self.probe(on_peer)
        probe.login(name)
        return name, probe

    def name(self, prefix: str = "cf") -> str:
        return f"{prefix}{os.getpid() % 10000}x{next(self._counter)}"

    def close_all(self) -> None:
        for probe in self.probes:
            probe.close()
        self.probes.clear()


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    run: Callable[[Context], None]
    weight: float = 1.0
    """How many timeouts the case may take (large messages take longer)."""
    peer: bool = False
    """Checks two nodes of a cluster (runs only when one is given)."""


CASES: list[Case] = []


CaseRun = Callable[[Context], None]


def case(case_id: str, name: str, weight: float = 1.0,
         peer: bool = False) -> Callable[[CaseRun], CaseRun]:
    """Register the decorated function as a conformance case."""

    def register(run: Callable[[Context], None]) -> Callable[[Context], None]:
        CASES.append(Case(case_id, name, run, weight, peer))
        return run
    return register


def wait_until(check: Callable[[], bool], ctx: Context, expected: str,
               got: str | Callable[[], str]) -> None:
    """Poll ``check`` until it holds or the case's deadline passes; ``got`` may be worked
    out only then."""
    while not check():
        if time.monotonic() > ctx.deadline:
            raise CaseFailure(expected, got if isinstance(got, str) else got())
        time.sleep(0.02)


# --- handshake ---------------------------------------------------------------

@case("handshake.accepted", "a valid name is accepted with HELLO")
def _accepted(ctx: Context) -> None:
    ctx.user()


@case("handshake.in-use", "a name in use gets IN-USE and the connection closes")
def _in_use(ctx: Context) -> None:
    name, _ = ctx.user()
    second = ctx.probe()
    second.send(f"HELLO-FROM {name}\n".encode())
    second.expect(b"IN-USE")
    second.expect_closed()


def _disallowed(char: str) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        probe = ctx.probe()
        probe.send(f"HELLO-FROM bad{char}name\n".encode())
        probe.expect(b"BAD-RQST-BODY")
        probe.expect_closed()
    return run


for _char, _label in [("!", "bang"), ("@", "at"), ("#", "hash"), ("$", "dollar"),
                      ("%", "percent"), ("^", "caret"), ("&", "ampersand"), ("*", "star"),
                      (",", "comma"), (" ", "space")]:
    case(f"handshake.disallowed-{_label}",
         f"a name with {_char!r} gets BAD-RQST-BODY and is closed")(_disallowed(_char))


@case("handshake.empty-name", "an empty name gets BAD-RQST-BODY")
def _empty(ctx: Context) -> None:
    probe = ctx.probe()
    probe.send(b"HELLO-FROM \n")
    probe.expect(b"BAD-RQST-BODY")


@case("handshake.not-hello-first", "a first line other than HELLO-FROM gets BAD-RQST-HDR")
def _not_hello(ctx: Context) -> None:
    probe = ctx.probe()
    probe.send(b"LIST\n")
    probe.expect(b"BAD-RQST-HDR")
    probe.expect_closed()


@case("handshake.busy", "one user past --max-clients gets BUSY")
def _busy(ctx: Context) -> None:
    if ctx.max_clients is None:
        raise CaseSkipped("give --max-clients N to check BUSY")
    _, watcher = ctx.user()
    present = len([n for n in watcher.users() if n and n != "echobot"])
    for _ in range(ctx.max_clients - present):
        ctx.user()
    extra = ctx.probe()
    extra.send(f"HELLO-FROM {ctx.name()}\n".encode())
    extra.expect(b"BUSY")
    extra.expect_closed()


@case("names.invisible", "a name with a zero-width, format or private-use character "
      "gets BAD-RQST-BODY")
def _invisible(ctx: Context) -> None:
    for char in ("\u200b", "\u2060", "\ufeff", "\u202e", "\u00a0", "\ue000"):
        probe = ctx.probe()
        probe.send(f"HELLO-FROM {ctx.name()}{char}x\n".encode())
        probe.expect(b"BAD-RQST-BODY")


@case("names.too-long", f"a name over {p.MAX_NAME_LENGTH} characters gets BAD-RQST-BODY")
def _too_long(ctx: Context) -> None:
    fits = ctx.name().ljust(p.MAX_NAME_LENGTH, "n")
    ctx.probe().login(fits)
    probe = ctx.probe()
    probe.send(f"HELLO-FROM {ctx.name().ljust(p.MAX_NAME_LENGTH + 1, 'n')}\n".encode())
    probe.expect(b"BAD-RQST-BODY")


@case("names.look-alike", "a name that looks like a logged-in one (case, width, "
      "Cyrillic letters) gets IN-USE")
def _look_alike(ctx: Context) -> None:
    name, _ = ctx.user("cfab")
    for look_alike in (name.upper(), name.replace("a", "\u0430"),
                       "".join(chr(ord(c) + 0xFEE0) for c in name)):
        probe = ctx.probe()
        probe.send(f"HELLO-FROM {look_alike}\n".encode())
        probe.expect(b"IN-USE")


# --- LIST --------------------------------------------------------------------

@case("list.self-and-echobot", "LIST-OK names the user itself and echobot")
def _list_self(ctx: Context) -> None:
    name, probe = ctx.user()
    names = probe.users()
    if name not in names or "echobot" not in names:
        raise CaseFailure(f"{name} and echobot in the list", ",".join(names), probe.sent)


@case("list.format", "LIST-OK is one comma-separated list with no empty names")
def _list_format(ctx: Context) -> None:
    _, probe = ctx.user()
    ctx.user()
    names = probe.users()
    if any(not n or n != n.strip() for n in names) or len(set(names)) != len(names):
        raise CaseFailure("distinct names separated by single commas", shown(
            ",".join(names).encode()), probe.sent)


@case("list.updates", "LIST shows users who arrive and drops users who leave")
def _list_updates(ctx: Context) -> None:
    _, watcher = ctx.user()
    name, other = ctx.user()
    if name not in watcher.users():
        raise CaseFailure(f"{name} listed after logging in", "not listed", watcher.sent)
    other.close()
    wait_until(lambda: name not in watcher.users(), ctx,
               f"{name} gone from LIST after it disconnected", "still listed")


# --- SEND --------------------------------------------------------------------

def _relayed(body: str) -> Callable[[Context], None]:
    """One user sends ``body`` to another: SEND-OK, then the same body delivered."""
    def run(ctx: Context) -> None:
        sender_name, sender = ctx.user()
        recipient_name, recipient = ctx.user()
        sender.send(f"SEND {recipient_name} {body}\n".encode())
        sender.expect(b"SEND-OK")
        recipient.expect(f"DELIVERY {sender_name} {body}".encode())
    return run


case("send.delivered", "SEND gets SEND-OK and the recipient a DELIVERY")(
    _relayed("hello there"))
case("send.text-intact", "spaces and non-ASCII text arrive unchanged")(
    _relayed("  two  spaces, ünïcødé, 名前, emoji 👩‍👩‍👧 "))


@case("send.bad-dest", "SEND to a user not logged in gets BAD-DEST-USER")
def _bad_dest(ctx: Context) -> None:
    _, probe = ctx.user()
    probe.send(f"SEND {ctx.name('nobody')} hi\n".encode())
    probe.expect(b"BAD-DEST-USER")


@case("send.malformed", "SEND without a body gets BAD-RQST-BODY; the session goes on")
def _malformed(ctx: Context) -> None:
    name, probe = ctx.user()
    for line in (f"SEND {name}\n".encode(), b"SEND\n"):
        probe.send(line)
        probe.expect(b"BAD-RQST-BODY")
    probe.send(f"SEND {name} still here\n".encode())
    probe.expect(b"SEND-OK")


@case("send.to-self", "SEND to yourself gets SEND-OK and your own DELIVERY")
def _to_self(ctx: Context) -> None:
    name, probe = ctx.user()
    probe.send(f"SEND {name} note to self\n".encode())
    probe.expect(b"SEND-OK")
    probe.expect(f"DELIVERY {name} note to self".encode())


@case("send.echobot", "echobot answers SEND-OK, then echoes the message")
def _echobot(ctx: Context) -> None:
    _, probe = ctx.user()
    probe.send(b"SEND echobot ping pong\n")
    probe.expect(b"SEND-OK")
    probe.expect(b"DELIVERY echobot ping pong")
