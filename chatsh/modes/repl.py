"""The interactive shell: log in, then chat while messages arrive above the prompt.

One :class:`PromptSession` under ``patch_stdout()`` on one asyncio loop; the
engine's reader thread hands events to the shared :class:`FrontEnd`, whose lines
:class:`Incoming` gathers per network read and queues on the :class:`Display`. Logins run
off the event loop, so the screen never freezes while a server dawdles.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from prompt_toolkit.application import create_app_session
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import is_dumb_terminal

from .. import protocol as p
from .. import texts
from ..defaults import DEFAULT_REPLY_TIMEOUT
from ..engine import ClientEngine
from ..frontend import EXIT_LOST, EXIT_OK, FrontEnd
from ..sanitize import sanitize
from ..session import (
    Disconnected,
    Event,
    LoggedIn,
    LoginRefused,
    Outgoing,
    Request,
    ScriptLine,
    checked_message_request,
    users_request,
)
from ..store import Sent, data_home, store_path
from ..ui.archive import Archive
from ..ui.asker import Asker, is_chat_line, is_yes
from ..ui.attention import Attention
from ..ui.chat_log import ChatLog
from ..ui.conversation_state import Conversations
from ..ui.display import Display, DumbOutput, Rendered, Shown
from ..ui.dumb import InsertionEcho
from ..ui.entered import entered, new_partner, unseen_question
from ..ui.focus import FocusReports
from ..ui.history import chat_history
from ..ui.incoming import Incoming
from ..ui.keys import HOW_TO_LEAVE
from ..ui.login import LoginPrompt
from ..ui.paste import Pastes
from ..ui.prompt import chat_prompt
from ..ui.recall import Recall
from ..ui.reconnect import log_in_again
from ..ui.refresh import keep_listing, refresh_every
from ..ui.sender import Sender
from ..ui.signals import Signals
from ..ui.stamps import Stamps
from ..ui.style import chat_style
from ..ui.unanswered import watch_replies
from .collector import quiet_collector

QUIT_GRACE = 2.0
"""Seconds to wait at exit for replies to requests already sent (not when a request is
still being written: the server stopped reading, and no reply will come)."""


@dataclass(frozen=True)
class ReplOptions:
    user: str | None = None
    timestamps: str | None = None
    color: bool = True
    history: bool = True
    reconnect: bool = True
    embedded: bool = False
    log: str | None = None
    """Append a chat log of the session to this file (``--log``)."""
    bell: bool = True
    store: bool = True
    """Keep every message in the SQLite store (``--no-store`` turns it off)."""
    settings_problems: tuple[str, ...] = ()
    """What in the settings file did not count, to say after the welcome line."""
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT
    """Seconds after which a request without a reply is named (``--reply-timeout``)."""


class _ConnectionLost(Exception):
    """Raised into the prompt when the server goes away."""


class Repl(FrontEnd):
    def __init__(self, engine: ClientEngine, options: ReplOptions) -> None:
        super().__init__(engine)
        self.options = options
        self.stamps = Stamps(options.timestamps)
        color = options.color and not os.environ.get("NO_COLOR")
        self.color_depth = None if color else ColorDepth.MONOCHROME
        self.pastes = Pastes()
        self.history, self.history_warning = chat_history(options.history, self.pastes)
        self.style = chat_style()
        self.dumb = is_dumb_terminal()
        self.session = chat_prompt(self.history, lambda: self.state.roster, self.pastes,
                                   self.style, self.color_depth,
                                   self._toolbar, self._how_to_leave)
        if self.dumb:
            self.color_depth = ColorDepth.MONOCHROME
        self.asker = Asker(self.session, self.pastes, self.history, self.stamps,
                           self._exit_if_lost)
        self.display = Display(self.session.output, self.style, self.color_depth,
                               plain_prompt=self.asker.dumb_line if self.dumb else None)
        self.server = "embedded" if options.embedded else f"{engine.host}:{engine.port}"
        self.state = Conversations(
            self.server,
            None if self.dumb else Attention(self.session.output, options.bell),
            lambda: self.partner, lambda: self.session.default_buffer.text, self._redraw,
            self.show)
        self.archive = Archive(self.display.call_soon, options.store,
                               self.display.drawn_for, lambda: engine.heard_at)
        self.incoming = Incoming(self.display, self.stamps, self.state, self.archive)
        self.recall = Recall(self.archive, self.state, self.show, lambda: self.me,
                             functools.partial(FrontEnd.talk_to, self))
        self.focus = FocusReports(self.session, self.state.focus, not self.dumb)
        if self.dumb:  # before the prompt's own echo, which shows only a last character
            InsertionEcho(self.session.default_buffer, self.session.output)
        self.lost = False
        self.sender = Sender(engine, lambda why: self.display.call_soon(
            functools.partial(self._not_sent, why)))
        self._reconnecting: asyncio.Task[None] | None = None
        self.login = LoginPrompt(self.asker, self.attempt_login, self._settle, engine.close)
        self.signals = Signals()

    def _toolbar(self, columns: int) -> StyleAndTextTuples:
        return self.state.status.fragments(columns)

    def _how_to_leave(self) -> None:
        """Ctrl-C on an empty line: says no to a question, else how to leave."""
        if not self.asker.said_no():
            self.show([("class:hint", HOW_TO_LEAVE)])

    async def main(self) -> int:
        self.display.bind(asyncio.get_running_loop())
        with patch_stdout(), self.signals.handled(self.login.interrupt):
            try:
                return await self._run()
            except (asyncio.CancelledError, OSError) as exc:  # OSError: a terminal hung up
                status = self.signals.leaving_status(exc)
                if status is None:
                    raise
                return status
            finally:
                if self._reconnecting is not None:
                    self._reconnecting.cancel()
                dropped = self.display.close()
                if self.archive.log is not None:
                    self.archive.log.close()
                unkept = await asyncio.to_thread(self.archive.close)
                with contextlib.suppress(OSError):  # every write fails once it hung up
                    self.state.seen()  # the terminal gets its own title back
                    for count, what in ((dropped, "more incoming lines were not shown"), (
                            unkept, "messages received just before leaving were not kept")):
                        if count:
                            self.display.write_now(texts.system(f"({count} {what}.)"))

    async def _run(self) -> int:
        self.show(texts.system(texts.WELCOME))
        for warning in (*self.options.settings_problems, self.history_warning):
            if warning:
                self.show(texts.error(warning))
        if self.options.log:
            self.archive.log = ChatLog(self.options.log, lambda: self.me,
                                       lambda why: self.show(texts.error(why)))
        status = await self.login.run(self.options.user)
        if status is not None:
            return status
        self.history.recording = True
        self._list_quietly()
        watch = asyncio.ensure_future(watch_replies(self.engine, self.options.reply_timeout,
                                                    self.show))
        listing = asyncio.ensure_future(keep_listing(
            self.state, self._list_quietly, lambda: self.display.drawn, refresh_every()))
        try:
            status = await self._chat()
        finally:
            watch.cancel()
            listing.cancel()
        if status == EXIT_OK and self.sender.idle:
            await asyncio.to_thread(self.engine.wait_idle, QUIT_GRACE)
        return status

    def _settle(self) -> None:
        """Show now what came while the shell was busy (a login's lines)."""
        self.end_batch()
        self.display.drain()

    async def _chat(self) -> int:
        """Prompt after prompt. The terminal stays raw between them too: a key typed
        while a line is handled waits for the next prompt, where a Ctrl-D in cooked
        mode would be taken by the terminal as end of file and never arrive. The first
        waits a moment for what the message store remembers (the ``!to`` partner)."""
        draft: str | None = ""
        with self.session.input.raw_mode(), self.focus.reporting():
            await self.recall.open(store_path(data_home(), self.server, self.me))
            while draft is not None:
                self.display.drain()
                try:
                    to = f" to {sanitize(self.partner)}" if self.partner else ""
                    draft = await self._run_entered(
                        await self.asker.line(f"{sanitize(self.me)}{to}> ", draft))
                except EOFError:
                    return EXIT_OK
                except _ConnectionLost:
                    return EXIT_LOST
        return EXIT_OK

    async def _run_entered(self, text: str) -> str | None:
        """Run what one Enter gave, a paste's lines addressed, a long paste asked about
        first; the draft to show next ('' for none, the paste when it was not sent, a
        chat line typed as the answer to !to's question), None to leave."""
        lines = entered(text)
        if not lines.lines:  # Enter on an empty line: what came is read
            self.state.seen()
        question = lines.question()
        if question and not await self.asker.confirm(question):
            return self.pastes.recalled(text)
        draft = ""
        for line in lines.lines:
            partner = new_partner(line)
            if partner and partner not in self.state.roster.online:
                answer = await self.asker.answer(unseen_question(partner))
                if not is_yes(answer):  # a chat line typed by habit comes back
                    draft = answer if is_chat_line(answer) else draft
                    continue
            if self.run_line(line, ScriptLine(0, line)) is not None:
                return None
        return draft

    # --- requests and output ---------------------------------------------------

    def submit(self, outgoing: Outgoing) -> None:
        """Hand a request to the sending thread: a server that stops reading can
        block that thread, never the prompt (``!quit`` and Ctrl-C keep working)."""
        if not self.engine.connected:
            self.show([("class:hint", f"Not sent: not connected ({self.state.state}).")])
            return
        self.sender.put(outgoing)

    def _not_sent(self, reason: str) -> None:
        self.show([("class:hint", f"Not sent: {reason}.")])

    def send_message(self, destination: str, body: str) -> None:
        request, parts = checked_message_request(destination, body, self.line)
        if self.engine.connected:
            request.kept = self.archive.sent(destination, body)
        self.submit((request, parts))
        self.state.wrote_to(destination)

    def on_error_reply(self, request: Request | None, message: str) -> None:
        """A refused message is marked so in the store (``!last`` shows it not delivered)."""
        if message is texts.BAD_DEST and request is not None and isinstance(request.kept, Sent):
            self.archive.refused(request.kept)

    def talk_to(self, partner: str | None) -> None:
        super().talk_to(partner)
        self.archive.setting("partner", partner)

    def show_last(self, peer: str | None, count: int) -> None:
        self.recall.last(peer, count)

    def search(self, text: str) -> None:
        self.recall.search(text)

    def mute(self, name: str, muted: bool) -> None:
        self.recall.mute(name, muted)

    def error_line(self, request: Request | None, message: str) -> texts.Fragments:
        """RI9 exactly, then whom it was for, dim: after a burst, or ``@a,b``, the
        failures can be told apart."""
        line = super().error_line(request, message)
        if message is texts.BAD_DEST and request is not None and request.destination:
            return [*line, ("class:dim", f" (@{sanitize(request.destination)})")]
        return line

    def _list_quietly(self) -> None:
        self.submit(users_request(quiet=True))

    def show(self, *lines: Shown) -> None:
        """On the event loop, to the display; elsewhere, gathered until :meth:`end_batch`."""
        self.incoming.show(lines)

    # --- reader thread -----------------------------------------------------

    # The hooks below run on the reader thread: their lines are gathered for the
    # display, and every change to the shell's state (roster, toolbar) is handed to
    # the event loop, the one thread that changes it.

    def on_event(self, event: Event) -> None:
        if isinstance(event, LoginRefused) and self._reconnecting is not None:
            return  # a failed try: the toolbar counts them, the loop tries again
        super().on_event(event)

    def on_logged_in(self, event: LoggedIn) -> None:
        super().on_logged_in(event)
        self.incoming.logged_in(event.name)
        self.display.call_soon(functools.partial(self.state.logged_in, event.name))

    def end_batch(self) -> None:
        self.incoming.end_batch()

    def on_events(self, events: list[Event]) -> None:
        self.incoming.read(events, self._rendered, self.on_event)

    def on_deliveries(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.show(self._rendered(pairs))

    def _rendered(self, pairs: Sequence[tuple[str, str]]) -> Rendered:
        self.delivered += len(pairs)
        return self.incoming.rendered(pairs, self.me)

    def on_users(self, request: Request | None, names: tuple[str, ...]) -> None:
        super().on_users(request, names)
        self.display.call_soon(functools.partial(self.state.listed, names))

    def on_reply(self, request: Request | None, event: p.ServerEvent) -> None:
        super().on_reply(request, event)
        name = request.destination if request is not None and type(event) is p.SendOk else None
        if name and name not in self.state.roster.online:  # once a name: SEND-OKs flood
            self.display.call_soon(functools.partial(self.state.reached, name))

    def on_own_reply(self, request: Request, event: p.ServerEvent) -> None:
        super().on_own_reply(request, event)
        if not isinstance(event, p.ListOk):  # a server without LIST: names come as seen
            self.display.call_soon(self.state.unlisted)

    def on_disconnected(self, event: Disconnected) -> None:
        self.show(texts.error(texts.CONNECTION_LOST))
        self.end_batch()
        self.display.call_soon(self._now_disconnected)

    def _now_disconnected(self) -> None:
        self.state.disconnected()
        self._reconnect() if self.options.reconnect else self._exit_lost()

    # --- reconnecting (on the event loop) -------------------------------------

    def _reconnect(self) -> None:
        self._reconnecting = asyncio.ensure_future(self._log_in_again())

    async def _log_in_again(self) -> None:
        await log_in_again(self.engine, self.me, self.on_events, self._trying,
                           lambda text: self.show([("class:hint", text)]))
        self.end_batch()
        self._reconnecting = None
        self._list_quietly()
        self._redraw()

    def _trying(self, attempt: int) -> None:
        self.end_batch()  # what the last try said
        self.state.reconnecting(attempt + 1)

    def _redraw(self) -> None:
        """Show a changed toolbar (the user count) without waiting for a keypress."""
        if self.session.app.is_running:
            self.session.app.invalidate()

    def _exit_lost(self) -> None:
        self.lost = True
        self._exit_if_lost()

    def _exit_if_lost(self) -> None:
        future = self.session.app.future
        if self.lost and future is not None and not future.done():
            self.session.app.exit(exception=_ConnectionLost())


def run(engine: ClientEngine, options: ReplOptions) -> int:
    quiet_collector()
    if not is_dumb_terminal():
        return asyncio.run(Repl(engine, options).main())
    with create_app_session(output=DumbOutput.from_pty(sys.stdout, term="dumb")):
        return asyncio.run(Repl(engine, options).main())
