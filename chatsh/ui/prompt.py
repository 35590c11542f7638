"""The shell's prompt: its history, colours, completion, keys, paste and toolbar."""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import History
from prompt_toolkit.input import create_input
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.styles import BaseStyle

from .completer import ChatCompleter, Roster
from .keys import chat_bindings
from .lexer import ChatLexer
from .paste import Pastes, with_linear_paste
from .resize import keep_prompt_whole

TOOLBAR_CLOCK = 15.0
"""Seconds between redraws that keep the toolbar's clock current."""


def chat_prompt(history: History, roster: Callable[[], Roster], pastes: Pastes,
                style: BaseStyle, color_depth: ColorDepth | None,
                toolbar: Callable[[int], StyleAndTextTuples],
                interrupted: Callable[[], None]) -> PromptSession[str]:
    """A prompt that completes the names ``roster`` gives and expands ``pastes``;
    ``toolbar`` makes the bottom toolbar for the terminal's width; ``interrupted`` hears
    of Ctrl-C on an empty line."""
    session: PromptSession[str] = PromptSession(
        history=history, lexer=PygmentsLexer(ChatLexer), completer=ChatCompleter(roster),
        complete_while_typing=False, key_bindings=chat_bindings(pastes, interrupted),
        style=style, color_depth=color_depth, enable_history_search=False,
        bottom_toolbar=lambda: toolbar(get_app().output.get_size().columns),
        mouse_support=False, enable_suspend=True, input=with_linear_paste(create_input()),
        refresh_interval=TOOLBAR_CLOCK)
    keep_prompt_whole(session.app)
    return session
