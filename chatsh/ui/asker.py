"""The shell's questions at its prompt: a line (a chat line, a login name) or yes/no.

The prompt being shown is known here, for a dumb terminal's display to write it
again under lines that arrive.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import StyleAndTextTuples

from ..sanitize import whole_characters
from .history import GatedFileHistory, GatedMemoryHistory
from .paste import Pastes
from .stamps import Stamps


class Asker:
    def __init__(self, session: PromptSession[str], pastes: Pastes,
                 history: GatedFileHistory | GatedMemoryHistory, stamps: Stamps,
                 pre_run: Callable[[], None]) -> None:
        self._session = session
        self._pastes = pastes
        self._history = history
        self._stamps = stamps
        self._pre_run = pre_run
        self._message = ""
        """The prompt being shown ('' when none)."""
        self._asking = False
        """A yes/no question is at the prompt."""

    def dumb_line(self) -> str:
        """The prompt line being typed, as a dumb terminal shows it ('' when none)."""
        if not self._message:
            return ""
        return self._message + self._session.default_buffer.text

    async def line(self, message: str, draft: str = "") -> str:
        """One line of input, ``draft`` in it to begin with; a long paste's marker is
        replaced by its text."""
        self._message = message

        def shown() -> StyleAndTextTuples:  # drawn again on Enter: your line keeps its time
            return [*self._stamps.now(), ("class:prompt", message)]
        try:
            text = whole_characters(self._pastes.expand(await self._session.prompt_async(
                shown, default=draft, pre_run=self._pre_run)))
        finally:
            self._message = ""
        return text

    async def confirm(self, question: str) -> bool:
        """A y/N question: yes only for y or yes (Ctrl-C and Ctrl-D say no); the answer
        stays out of the history."""
        return is_yes(await self.answer(question))

    async def answer(self, question: str) -> str:
        """The line typed to a y/N question ('' for Ctrl-C and Ctrl-D), kept out of the
        history."""
        self._asking, self._history.recording = True, False
        try:
            return await self.line(question)
        except EOFError:
            return ""
        finally:
            self._asking, self._history.recording = False, True

    def said_no(self) -> bool:
        """Ctrl-C on an empty line: the answer to a question being asked is no."""
        if self._asking:
            self._session.app.exit(result="")
        return self._asking


def is_yes(answer: str) -> bool:
    """Whether an answer to a y/N question says yes."""
    return answer.strip().lower() in ("y", "yes")


def is_chat_line(answer: str) -> bool:
    """Whether an answer to a y/N question is a line typed by habit, not an answer."""
    return answer.strip().lower() not in ("", "n", "no", "y", "yes")
