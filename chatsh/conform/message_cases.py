"""Cases about LIST and SEND between logged-in users."""

from __future__ import annotations

from ..names import ECHOBOT
from ..words import Word
from .cases import CaseRun, Context, ask_until, case
from .probe import CaseFailure, is_line, shown, spelt, split_names


@case("list.self", "LIST-OK names the user itself")
def _list_self(ctx: Context) -> None:
    name, probe = ctx.user()
    names = probe.users()
    if name not in names:
        raise CaseFailure(f"{name} in the list", shown(probe.listed), probe.sent)


@case("list.format", "LIST-OK is one comma-separated list: no spaces around names, "
      "no name twice")
def _list_format(ctx: Context) -> None:
    name, probe = ctx.user()
    other, _ = ctx.user()
    names = probe.users(exact=True)
    if "" in names:
        ctx.note("the list holds an empty name: a login with an empty name was accepted")
    listed = [n for n in names if n]
    if (name not in listed or other not in listed or any(n != n.strip() for n in listed)
            or len(set(listed)) != len(listed)):
        raise CaseFailure(f"{name} and {other} among distinct names separated by single "
                          "commas", shown(probe.listed), probe.sent)


@case("list.updates", "LIST shows users who arrive and drops users who leave")
def _list_updates(ctx: Context) -> None:
    _, watcher = ctx.user()
    name, other = ctx.user()
    if name not in watcher.users():
        raise CaseFailure(f"{name} listed after logging in", shown(watcher.listed),
                          watcher.sent)
    other.close()
    ask_until(lambda: watcher.request(Word.LIST), lambda line: is_line(line, Word.LIST_OK)
              and name not in (n.strip() for n in split_names(line)), ctx,
              f"LIST-OK without {name} after it disconnected")


def _relayed(body: str) -> CaseRun:
    """One user sends ``body`` to another: SEND-OK, then the same body delivered."""
    def run(ctx: Context) -> None:
        sender_name, sender = ctx.user()
        recipient_name, recipient = ctx.user()
        sender.say(Word.SEND, recipient_name, body)
        sender.expect(spelt(Word.SEND_OK))
        recipient.expect(spelt(Word.DELIVERY, sender_name, body))
    return run


case("send.delivered", "SEND gets SEND-OK and the recipient a DELIVERY")(
    _relayed("hello there"))
case("send.text-intact", "spaces and non-ASCII text arrive unchanged")(
    _relayed("  two  spaces, ünïcødé, 名前, emoji 👩‍👩‍👧 "))


@case("send.bad-dest", "SEND to a user not logged in gets BAD-DEST-USER")
def _bad_dest(ctx: Context) -> None:
    _, probe = ctx.user()
    probe.say(Word.SEND, ctx.name("nobody"), "hi")
    probe.expect(spelt(Word.BAD_DEST_USER))


@case("send.malformed", "SEND without a body gets BAD-RQST-BODY (a bare SEND either "
      "error); the session goes on")
def _malformed(ctx: Context) -> None:
    name, probe = ctx.user()
    probe.say(Word.SEND, name)
    probe.expect(spelt(Word.BAD_RQST_BODY))
    probe.say(Word.SEND)
    probe.expect_one_of((spelt(Word.BAD_RQST_BODY), spelt(Word.BAD_RQST_HDR)))
    probe.say(Word.SEND, name, "still here")
    probe.expect_unordered([spelt(Word.SEND_OK), spelt(Word.DELIVERY, name, "still here")],
                           "SEND-OK and the DELIVERY to itself, in either order")


@case("send.to-self", "SEND to yourself gets SEND-OK and your own DELIVERY, in either order")
def _to_self(ctx: Context) -> None:
    name, probe = ctx.user()
    probe.say(Word.SEND, name, "note to self")
    probe.expect_unordered([spelt(Word.SEND_OK), spelt(Word.DELIVERY, name, "note to self")],
                           "SEND-OK and the DELIVERY to itself, in either order")


@case("send.echobot", "echobot answers SEND-OK, then echoes the message")
def _echobot(ctx: Context) -> None:
    ctx.need_echobot()
    _, probe = ctx.user()
    probe.say(Word.SEND, ECHOBOT, "ping pong")
    probe.expect(spelt(Word.SEND_OK))
    probe.expect(spelt(Word.DELIVERY, ECHOBOT, "ping pong"))
