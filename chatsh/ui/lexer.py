"""Pygments lexer for the input line: recipients, commands, message text."""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups
from pygments.token import Error, Keyword, Name, Text, Whitespace

from ..commands import COMMANDS

_KNOWN = "|".join(re.escape(name) for name in COMMANDS)


class ChatLexer(RegexLexer):
    """``@user`` is a name, a known ``!command`` a keyword, an unknown one an error."""

    name = "chatsh input"
    aliases = ["chatsh"]
    tokens = {
        "root": [
            (r"(\s*)(@\S+)", bygroups(Whitespace, Name.Tag), "message"),
            (rf"(\s*)(!(?:{_KNOWN}))(?=\s|$)", bygroups(Whitespace, Keyword), "message"),
            (r"(\s*)(!\S*)", bygroups(Whitespace, Error), "message"),
            (r"[^\n]+", Text),
            (r"\n", Whitespace),
        ],
        "message": [
            (r"\n", Whitespace, "#pop"),
            (r"[^\n]+", Text),
        ],
    }
