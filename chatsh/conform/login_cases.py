"""Cases about the handshake, and chatsh's own name policies."""

from __future__ import annotations

from ..names import ECHOBOT, MAX_NAME_LENGTH
from ..words import Word
from .cases import CaseRun, Context, Level, case, refused_header
from .probe import CaseFailure, CaseSkipped, spelt

FATE_GRACE = 1.0
"""Seconds to watch what a server does with a connection after refusing a login."""


def _after_refusal(ctx: Context, fate: str, refusal: str) -> None:
    if fate == "open":
        ctx.note(f"answered {refusal}; the connection stayed open")
    elif fate == "closed":
        ctx.note(f"answered {refusal}, then closed the connection")
    else:
        raise CaseFailure(f"nothing after {refusal} but a close or silence", fate)


@case("handshake.accepted", "a valid name is accepted with HELLO")
def _accepted(ctx: Context) -> None:
    ctx.user()


@case("handshake.in-use", "a name in use gets IN-USE")
def _in_use(ctx: Context) -> None:
    name, _ = ctx.user()
    second = ctx.probe()
    second.say(Word.HELLO_FROM, name)
    second.expect(spelt(Word.IN_USE))
    _after_refusal(ctx, second.fate(min(FATE_GRACE, ctx.timeout / 4)), "IN-USE")


@case("handshake.retry-after-in-use", "a connection kept open after IN-USE takes another "
      "HELLO-FROM", Level.RECOMMENDED)
def _retry(ctx: Context) -> None:
    name, _ = ctx.user()
    second = ctx.probe()
    second.say(Word.HELLO_FROM, name)
    second.expect(spelt(Word.IN_USE))
    if second.fate(min(FATE_GRACE, ctx.timeout / 4)) == "closed":
        raise CaseSkipped("the server closes the connection after IN-USE, as the "
                          "assignment's text says; clients reconnect")
    second.login(ctx.name())


def _disallowed(char: str) -> CaseRun:
    def run(ctx: Context) -> None:
        probe = ctx.probe()
        probe.say(Word.HELLO_FROM, f"bad{char}name")
        probe.expect(spelt(Word.BAD_RQST_BODY))
    return run


for _char, _label in [("!", "bang"), ("@", "at"), ("#", "hash"), ("$", "dollar"),
                      ("%", "percent"), ("^", "caret"), ("&", "ampersand"), ("*", "star"),
                      (",", "comma"), (" ", "space")]:
    case(f"handshake.disallowed-{_label}",
         f"a name with {_char!r} gets BAD-RQST-BODY")(_disallowed(_char))


@case("handshake.empty-name", "an empty name gets BAD-RQST-BODY")
def _empty(ctx: Context) -> None:
    probe = ctx.probe()
    probe.say(Word.HELLO_FROM, "")
    probe.expect(spelt(Word.BAD_RQST_BODY))


@case("handshake.not-hello-first", "a first line other than HELLO-FROM gets BAD-RQST-HDR")
def _not_hello(ctx: Context) -> None:
    probe = ctx.probe()
    probe.say(Word.LIST)
    probe.expect(spelt(Word.BAD_RQST_HDR))


@case("handshake.not-hello-first-closes", "after a bad first header the server closes "
      "the connection", Level.RECOMMENDED)
def _not_hello_closes(ctx: Context) -> None:
    probe = ctx.probe()
    probe.say(Word.LIST)
    probe.expect(spelt(Word.BAD_RQST_HDR))
    fate = probe.fate(min(FATE_GRACE, ctx.timeout / 4))
    if fate != "closed":
        raise CaseFailure("the connection closed after BAD-RQST-HDR",
                          f"answered BAD-RQST-HDR; the connection stayed {fate}", probe.sent)


case("handshake.hello-after-login", "HELLO-FROM after logging in gets BAD-RQST-HDR; the "
     "session goes on")(refused_header(lambda ctx: spelt(Word.HELLO_FROM, ctx.name())))


@case("handshake.busy", "one user past --max-clients gets BUSY and is closed")
def _busy(ctx: Context) -> None:
    if ctx.max_clients is None:
        raise CaseSkipped("give --max-clients N to check BUSY")
    _, watcher = ctx.user()
    present = len([n for n in watcher.users() if n and n != ECHOBOT])
    for count in range(present, ctx.max_clients):
        try:
            ctx.user()
        except CaseFailure as exc:
            if exc.got != "BUSY":
                raise
            raise CaseFailure(f"room for {ctx.max_clients} users (--max-clients)",
                              f"BUSY after {count} users (this run's connections all come "
                              "from one address: does the server bound the users of one, "
                              "as chatsh serve's --max-clients-per-address does?)",
                              exc.sent) from None
    extra = ctx.probe()
    extra.say(Word.HELLO_FROM, ctx.name())
    extra.expect(spelt(Word.BUSY))
    extra.expect_closed()


@case("names.invisible", "a name with a zero-width, format or private-use character "
      "gets BAD-RQST-BODY", Level.POLICY)
def _invisible(ctx: Context) -> None:
    for char in ("\u200b", "\u2060", "\ufeff", "\u202e", "\u00a0", "\ue000"):
        probe = ctx.probe()
        probe.say(Word.HELLO_FROM, f"{ctx.name()}{char}x")
        probe.expect(spelt(Word.BAD_RQST_BODY))


@case("names.too-long", f"a name over {MAX_NAME_LENGTH} characters gets BAD-RQST-BODY",
      Level.POLICY)
def _too_long(ctx: Context) -> None:
    fits = ctx.name().ljust(MAX_NAME_LENGTH, "n")
    ctx.probe().login(fits)
    probe = ctx.probe()
    probe.say(Word.HELLO_FROM, ctx.name().ljust(MAX_NAME_LENGTH + 1, "n"))
    probe.expect(spelt(Word.BAD_RQST_BODY))


@case("names.look-alike", "a name that looks like a logged-in one (case, width, "
      "Cyrillic letters) gets IN-USE", Level.POLICY)
def _look_alike(ctx: Context) -> None:
    name, _ = ctx.user("cfab")
    for look_alike in (name.upper(), name.replace("a", "\u0430"),
                       "".join(chr(ord(c) + 0xFEE0) for c in name)):
        probe = ctx.probe()
        probe.say(Word.HELLO_FROM, look_alike)
        probe.expect(spelt(Word.IN_USE))
