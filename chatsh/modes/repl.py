"""The interactive shell: log in, then chat while messages arrive above the prompt.

One :class:`PromptSession` under ``patch_stdout()`` on one asyncio loop; the
engine's reader thread hands events to :meth:`Repl.on_event`, which formats them
and queues them on the :class:`Display`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from prompt_toolkit import PromptSession
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.patch_stdout import patch_stdout

from .. import protocol as p
from .. import texts
from ..commands import CommandInput, InputError, help_lines, parse_input
from ..engine import (
    ClientEngine,
    ConnectError,
    Disconnected,
    EngineEvent,
    HandshakeTimeout,
    LineTooLong,
    Replied,
)
from ..ui.completer import ChatCompleter, Roster
from ..ui.display import Display
from ..ui.history import chat_history
from ..ui.keys import chat_bindings
from ..ui.lexer import ChatLexer
from ..ui.style import chat_style
from ..ui.toolbar import Status
from .outcomes import EXIT_CONNECT, EXIT_ERROR, EXIT_LOST, EXIT_OK, login_failure

_SILENT = "silent"
QUIT_GRACE = 2.0
"""Seconds to wait at exit for replies to requests already sent."""


class _ConnectionLost(Exception):
    """Raised into the prompt when the server goes away."""


class Repl:
    def __init__(self, engine: ClientEngine, args: argparse.Namespace, embedded: bool) -> None:
        self.engine = engine
        self.preset_user: str | None = args.user
        self.time_format: str | None = args.timestamps
        self.roster = Roster()
        self.status = Status("embedded" if embedded else f"{engine.host}:{engine.port}")
        no_color = args.no_color or bool(os.environ.get("NO_COLOR"))
        self.color_depth = ColorDepth.MONOCHROME if no_color else None
        self.history = chat_history(enabled=not args.no_history)
        self.style = chat_style()
        self.session: PromptSession[str] = PromptSession(
            history=self.history, lexer=PygmentsLexer(ChatLexer),
            completer=ChatCompleter(lambda: self.roster), complete_while_typing=False,
            key_bindings=chat_bindings(), style=self.style, color_depth=self.color_depth,
            bottom_toolbar=self.status.fragments, enable_history_search=False,
            mouse_support=False)
        self.display = Display(self.session.output, self.style, self.color_depth)
        self.lost = False
        self._incoming: list[texts.Fragments] = []

    async def main(self) -> int:
        self.display.bind(asyncio.get_running_loop())
        with patch_stdout():
            try:
                return await self._run()
            finally:
                self.display.drain()

    async def _run(self) -> int:
        self._show(texts.system(texts.WELCOME))
        status = await self._log_in()
        if status is not None:
            return status
        self.history.recording = True
        self.engine.start(self.on_event, self._end_batch)
        self.engine.request_users(tag=_SILENT)
        status = await self._chat()
        if status == EXIT_OK:
            await asyncio.to_thread(self.engine.wait_idle, QUIT_GRACE)
        return status

    async def _chat(self) -> int:
        while True:
            self.display.drain()
            try:
                text = await self.session.prompt_async(
                    [("class:prompt", f"{self.status.user}> ")], pre_run=self._exit_if_lost)
            except (EOFError, KeyboardInterrupt):
                return EXIT_OK
            except _ConnectionLost:
                return EXIT_LOST
            for line in text.split("\n"):
                status = self._handle(line)
                if status is not None:
                    return status

    async def _log_in(self) -> int | None:
        """Ask for a name until the server accepts one; a status means leave."""
        while True:
            if self.preset_user is not None:
                name, self.preset_user = self.preset_user, None
            else:
                self.display.drain()
                try:
                    name = await self.session.prompt_async("login: ")
                except (EOFError, KeyboardInterrupt):
                    return EXIT_OK
            name = name.strip()
            if name == "!quit":
                return EXIT_OK
            if not name:
                continue
            if p.name_problem(name):  # also catches commands such as !who or @bob
                self._show(texts.name_disallowed(name))
                continue
            try:
                self.engine.connect()
                verdict = self.engine.login(name)
            except (ConnectError, HandshakeTimeout) as exc:
                self._show(texts.error(str(exc)))
                return EXIT_CONNECT
            if isinstance(verdict, p.Hello):
                self.status.user, self.status.connected = name, True
                self.roster = Roster(me=name)
                self._show(texts.logged_in(name))
                return None
            self.engine.close()
            fatal, line = login_failure(name, verdict)
            self._show(line)
            if fatal:
                return EXIT_ERROR

    def _handle(self, line: str) -> int | None:
        """Act on one input line; a status means leave."""
        if not line.strip():
            return None
        parsed = parse_input(line)
        if isinstance(parsed, InputError):
            self._show([("class:hint", parsed.message)])
        elif isinstance(parsed, CommandInput):
            return self._command(parsed.name)
        else:
            try:
                self.engine.send_message(parsed.destination, parsed.body)
            except ConnectionError:
                return None
            self._remember(parsed.destination)
        return None

    def _command(self, name: str) -> int | None:
        if name == "quit":
            return EXIT_OK
        if name == "help":
            self._show(*(texts.system(line) for line in help_lines()))
        elif name == "who":
            try:
                self.engine.request_users()
            except ConnectionError:
                pass
        return None

    def _remember(self, name: str) -> None:
        recent = (name, *(other for other in self.roster.recent if other != name))
        self.roster = Roster(self.roster.names, recent[:50], self.roster.me)

    def _show(self, *lines: texts.Fragments) -> None:
        self.display.show(*self._stamped(lines))

    def _stamped(self, lines: tuple[texts.Fragments, ...] | list[texts.Fragments]
                 ) -> tuple[texts.Fragments, ...] | list[texts.Fragments]:
        """Lines with a ``[12:34]`` prefix when ``--timestamps`` is on."""
        if not self.time_format:
            return lines
        prefix = ("class:timestamp", time.strftime(f"[{self.time_format}] "))
        return [[prefix, *line] for line in lines]

    # --- reader thread -----------------------------------------------------

    def _queue(self, *lines: texts.Fragments) -> None:
        self._incoming.extend(lines)

    def _end_batch(self) -> None:
        """Hand the lines of one network read to the display at once."""
        if self._incoming:
            lines, self._incoming = self._incoming, []
            self.display.show(*self._stamped(lines))

    def on_event(self, event: EngineEvent) -> None:
        """Format one engine event for the screen (called on the reader thread)."""
        if isinstance(event, Replied):
            self._on_reply(event.request.tag, event.event)
        elif isinstance(event, p.Delivery):
            me = self.status.user
            mention = bool(me) and event.sender != me and me.casefold() in event.body.casefold()
            self._queue(texts.delivery(event.sender, event.body, highlight=mention))
            if event.sender != me:
                self._remember(event.sender)
        elif isinstance(event, Disconnected):
            self.status.connected = False
            self._queue(texts.error(texts.CONNECTION_LOST))
            self._end_batch()
            self.display.call_soon(self._exit_lost)
        elif isinstance(event, LineTooLong):
            self._queue(texts.error(f"Skipped a server line longer than {event.limit} bytes."))
        elif isinstance(event, p.UnknownLine):
            self._queue(texts.unknown_line(event.text))
        else:
            self._on_reply(None, event)

    def _on_reply(self, tag: object, event: p.ServerEvent) -> None:
        if isinstance(event, p.ListOk):
            valid = tuple(name for name in event.names if p.is_valid_name(name))
            self.roster = Roster(valid, self.roster.recent, self.roster.me)
            self.status.online = len(event.names)
            if tag != _SILENT:
                self._queue(*texts.user_list(event.names))
            self.display.call_soon(self._redraw)
            return
        message = texts.REPLY_TEXT.get(type(event))
        if message is not None:
            self._queue(texts.system(message) if event == p.SendOk() else texts.error(message))

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


def run(engine: ClientEngine, args: argparse.Namespace, embedded: bool) -> int:
    return asyncio.run(Repl(engine, args, embedded).main())
