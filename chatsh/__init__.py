"""chatsh: a chat shell, script runner and server for a line-based chat protocol."""

__version__ = "0.1.0"
