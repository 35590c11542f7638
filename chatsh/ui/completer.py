"""Tab completion of ``@names`` and ``!commands`` from the names the shell knows."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from itertools import islice

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..commands import COMMANDS
from ..names import destination_problem
from ..sanitize import sanitize

RECENT = 50
"""Recent contacts kept for completion."""


class Roster:
    """Who can be completed: the last user list, the senders heard from since, recent
    contacts, yourself. Changed on the event loop only, where the completer reads it;
    each change costs time in its own length, however many names are known."""

    def __init__(self, names: Iterable[str] = (), recent: Iterable[str] = (),
                 me: str = "") -> None:
        self.online: dict[str, None] = dict.fromkeys(names)
        """The names online, in the order they became known."""
        self.recent = tuple(recent)
        """Recent contacts, the latest first."""
        self.me = me

    def listed(self, names: Iterable[str]) -> None:
        """The names of a user list (those a message can be sent to) instead of the
        old ones."""
        self.online = dict.fromkeys(
            name for name in names if destination_problem(name) is None)

    def heard_from(self, senders: list[str]) -> int:
        """Senders are online by definition: added at once, and first among the recent
        contacts (the latest first); how many names were new."""
        online = self.online
        new = [name for name in dict.fromkeys(senders)
               if name not in online and destination_problem(name) is None]
        online.update(dict.fromkeys(new))
        self.remember(senders)
        return len(new)

    def remember(self, names: list[str]) -> None:
        """``names`` (the latest last) first among the recent contacts."""
        latest = list(islice(dict.fromkeys(reversed(names)), RECENT))
        self.recent = (*latest, *(other for other in self.recent if other not in latest)
                       )[:RECENT]


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

    online = roster.online
    recent = [name for name in roster.recent if name in online and name != roster.me]
    rest = sorted((name for name in online if name not in recent and name != roster.me),
                  key=sort_key)
    ordered = recent + rest + ([roster.me] if roster.me in online else [])
    return [name for name in ordered if matches(name)]


class ChatCompleter(Completer):
    """Completes ``@name`` anywhere (each name of ``@bob,carol``) and ``!command`` at the
    start of the line."""

    def __init__(self, roster: Callable[[], Roster]) -> None:
        self._roster = roster

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        word = document.get_word_before_cursor(WORD=True)
        before = document.text_before_cursor.lstrip()
        if not document.text.strip():  # Tab on an empty line: answer, the latest first
            roster = self._roster()
            for name in roster.recent:
                if name in roster.online and name != roster.me:
                    yield Completion(f"@{name} ", start_position=-len(document.text_before_cursor),
                                     display=f"@{sanitize(name)}")
        elif (before.startswith("!to ") and not word.startswith("@")
                and before[4:].lstrip() == word):  # !to's one argument: a name
            for name in rank_names(word, self._roster()):
                yield Completion(name, start_position=-len(word), display=sanitize(name))
        elif word.startswith("@"):
            *named, prefix = word[1:].split(",")  # @bob,ca: the next of several names
            if all(named):
                for name in rank_names(prefix, self._roster()):
                    if name not in named:
                        yield Completion(f"{word[:-len(prefix) or None]}{name} ",
                                         start_position=-len(word),
                                         display=f"@{sanitize(name)}")
        elif word.startswith("!") and document.text_before_cursor.lstrip() == word:
            for command in COMMANDS.values():
                if command.name.startswith(word[1:]):
                    yield Completion(f"!{command.name}", start_position=-len(word),
                                     display_meta=command.description)
