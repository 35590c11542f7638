"""Cases for two nodes of one cluster (``chatsh conform --peer HOST:PORT``): to every
client they must behave as one server."""

from __future__ import annotations

from ..names import ECHOBOT
from ..words import Word
from .cases import Context, ask_until, case
from .probe import CaseFailure, shown, spelt
from .stream_cases import freed

ORDERED = 200
"""Messages pipelined from one node to the other in the ordering case."""


@case("peer.name-unique", "a name held on one node gets IN-USE on the other", peer=True)
def _name_unique(ctx: Context) -> None:
    name, _ = ctx.user("pu")
    for candidate in (name, name.upper()):
        probe = ctx.probe(on_peer=True)
        probe.say(Word.HELLO_FROM, candidate)
        probe.expect(spelt(Word.IN_USE),
                     f"IN-USE for {candidate} (held on the first node as {name})")


@case("peer.list", "LIST on either node names the users of both, echobot at most once",
      peer=True)
def _list(ctx: Context) -> None:
    here, here_probe = ctx.user("pl")
    there, there_probe = ctx.user("pl", on_peer=True)
    for probe in (here_probe, there_probe):
        names = probe.users()
        if here not in names or there not in names or names.count(ECHOBOT) > 1:
            raise CaseFailure(f"{here}, {there} and echobot at most once",
                              shown(probe.listed), probe.sent)


@case("peer.send", "SEND crosses nodes both ways; echobot, if any, answers on both",
      peer=True)
def _send(ctx: Context) -> None:
    here, here_probe = ctx.user("ps")
    there, there_probe = ctx.user("ps", on_peer=True)
    for sender, probe, recipient, reader in ((here, here_probe, there, there_probe),
                                             (there, there_probe, here, here_probe)):
        probe.say(Word.SEND, recipient, f"hello from {sender} ✓")
        probe.expect(spelt(Word.SEND_OK))
        reader.expect(spelt(Word.DELIVERY, sender, f"hello from {sender} ✓"))
        if not ctx.has_echobot():
            continue
        probe.say(Word.SEND, ECHOBOT, "echo")
        probe.expect(spelt(Word.SEND_OK))
        probe.expect(spelt(Word.DELIVERY, ECHOBOT, "echo"))


@case("peer.order", f"{ORDERED} pipelined messages cross nodes in order", peer=True, weight=2)
def _order(ctx: Context) -> None:
    here, here_probe = ctx.user("po")
    there, there_probe = ctx.user("po", on_peer=True)
    here_probe.send(b"".join(spelt(Word.SEND, there, f"n{i}") + b"\n" for i in range(ORDERED)))
    for i in range(ORDERED):
        here_probe.expect(spelt(Word.SEND_OK))
        there_probe.expect(spelt(Word.DELIVERY, here, f"n{i}"), f"DELIVERY {here} n{i} (in order)")


@case("peer.gone-user", "SEND to a user who left the other node gets BAD-DEST-USER",
      peer=True)
def _gone(ctx: Context) -> None:
    _, here_probe = ctx.user("pg")
    there, there_probe = ctx.user("pg", on_peer=True)
    here_probe.say(Word.SEND, there, "there?")
    here_probe.expect(spelt(Word.SEND_OK), f"SEND-OK while {there} is logged in on the other node")
    there_probe.close()
    ask_until(lambda: here_probe.request(Word.SEND, there, "anyone?"),
              spelt(Word.BAD_DEST_USER).__eq__, ctx, "BAD-DEST-USER once the user left")


case("peer.freed", "a name freed on one node is free on the other", peer=True)(
    freed(False, elsewhere=True))
case("peer.freed-abrupt", "a name freed by a reset on one node is free on the other",
     peer=True)(freed(True, elsewhere=True))
