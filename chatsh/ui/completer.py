"""Tab completion of ``@names`` and ``!commands`` from an immutable snapshot."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..commands import COMMANDS
from ..sanitize import sanitize


@dataclass(frozen=True, slots=True)
class Roster:
    """Who can be completed: the last user list, recent contacts, yourself."""

    names: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()
    me: str = ""


def sort_key(name: str) -> tuple[str, str]:
    """Alphabetical as a person reads it: case and accents ignored first."""
    decomposed = unicodedata.normalize("NFKD", name)
    base = "".join(char for char in decomposed if not unicodedata.combining(char))
    return base.casefold(), name


def rank_names(prefix: str, roster: Roster) -> list[str]:
    """Names matching ``prefix``, recent contacts first, then sorted, yourself last.

    Matching ignores case unless ``prefix`` has an upper-case letter.
    """
    exact = any(char.isupper() for char in prefix)
    folded = prefix.casefold()

    def matches(name: str) -> bool:
        return name.startswith(prefix) if exact else name.casefold().startswith(folded)

    online = set(roster.names)
    recent = [name for name in roster.recent if name in online and name != roster.me]
    rest = sorted((name for name in online if name not in recent and name != roster.me),
                  key=sort_key)
    ordered = recent + rest + ([roster.me] if roster.me in online else [])
    return [name for name in ordered if matches(name)]


class ChatCompleter(Completer):
    """Completes ``@name`` anywhere and ``!command`` at the start of the line."""

    def __init__(self, roster: Callable[[], Roster]) -> None:
        self._roster = roster

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        word = document.get_word_before_cursor(WORD=True)
        before = document.text_before_cursor.lstrip()
        if (before.startswith("!to ") and not word.startswith("@")
                and before[4:].lstrip() == word):  # !to's one argument: a name
            for name in rank_names(word, self._roster()):
                yield Completion(name, start_position=-len(word), display=sanitize(name))
        elif word.startswith("@"):
            for name in rank_names(word[1:], self._roster()):
                yield Completion(f"@{name} ", start_position=-len(word),
                                 display=f"@{sanitize(name)}")
        elif word.startswith("!") and document.text_before_cursor.lstrip() == word:
            for command in COMMANDS.values():
                if command.name.startswith(word[1:]):
                    yield Completion(f"!{command.name}", start_position=-len(word),
                                     display_meta=command.description)
