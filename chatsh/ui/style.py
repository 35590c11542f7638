"""Colours for the prompt, the input lexer's tokens and printed lines."""

from __future__ import annotations

from prompt_toolkit.styles import BaseStyle, Style, merge_styles, style_from_pygments_dict
from pygments.token import Error, Keyword, Name, Text

INPUT_TOKENS = {
    Name.Tag: "bold ansicyan",
    Keyword: "bold ansigreen",
    Error: "ansired underline",
    Text: "",
}

OUTPUT_CLASSES = {
    "escape": "reverse",
    "sender": "bold ansicyan",
    "sender-0": "ansicyan",
    "sender-1": "ansimagenta",
    "sender-2": "ansiblue",
    "sender-3": "ansibrightgreen",
    "sender-4": "ansibrightmagenta",
    "sender-5": "ansibrightcyan",
    "self": "bold",
    "from": "",
    "body": "",
    "mention": "bold ansiyellow",
    "user": "ansicyan",
    "system": "ansigreen",
    "error": "ansired",
    "hint": "ansiyellow",
    "timestamp": "ansibrightblack",
    "dim": "ansibrightblack",
    "prompt": "bold",
    "bottom-toolbar": "noreverse bg:ansibrightblack fg:ansiwhite",
    "bottom-toolbar.state": "bold",
    "bottom-toolbar.lost": "bold ansired",
    "bottom-toolbar.unread": "bold ansiyellow",
}


def chat_style() -> BaseStyle:
    return merge_styles([style_from_pygments_dict(INPUT_TOKENS), Style.from_dict(OUTPUT_CLASSES)])
