"""The defaults the command line shows, in a module that imports nothing, so that
``chatsh --version`` and ``--help`` load no more than they need."""

DEFAULT_PORT = 5378
DEFAULT_MAX_LINE = 64 * 1024 * 1024
"""The server's cap on a request line."""
CLIENT_MAX_LINE = 1024 * 1024 * 1024
"""The client's cap on a server line: far above any real message."""
DEFAULT_EXPECT_TIMEOUT = 10.0
DEFAULT_REPLY_TIMEOUT = 30.0
"""Seconds a script waits for the server to answer anything while replies are owed."""
