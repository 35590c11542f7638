"""Pieces of the interactive interface: style, keys, toolbar, lexer, completion."""
