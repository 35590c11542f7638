"""The command line's parsers: ``chatsh``'s, ``chatsh serve``'s and ``chatsh conform``'s
options in their groups, with their examples, and the types their values are read as.
A value out of range is argparse's usage error (status 2). Nothing here connects or
serves: :mod:`chatsh.cli` hands the parsed options over to one mode.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from . import __version__
from .defaults import (
    CLIENT_MAX_LINE,
    DEFAULT_EXPECT_TIMEOUT,
    DEFAULT_PORT,
    DEFAULT_REPLY_TIMEOUT,
)

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    from .serving.access import Network

CLIENT_EXAMPLES = """\
examples:
  chatsh                          chat on a private server started in-process
  chatsh serve --port 6000        run a server (in another terminal) ...
  chatsh --port 6000              ... and connect to it on 127.0.0.1
  chatsh --host chat.example.org --user alice --timestamps --log ~/chat.log
  chatsh --host chat.example.org --tls --no-reconnect
  chatsh --script greet.txt       run a script (first line: the login name)
  chatsh --port 6000 --user ci -c '@echobot ping' -c '!expect From echobot: ping'
                                  a one-line smoke test of a server (exit 0 or 1)
  printf 'bob\\n@echobot hi\\n' | chatsh --port 6000

commands once logged in (!help shows them all, and the keys):
  @<user> <message>         send a message
  @<user>,<user> <message>  send it to each of them
  !to <user>                lines without @ go to <user>; !to alone stops
  !who                      list the users online
  !quit                     leave (also Ctrl-D; Ctrl-C only clears the line)
  lines pasted after @<user> each go to <user>; more than 5 ask first
  !last [<user>] [N]        the last N messages (with <user>), kept after a restart
  !search <text>            every kept message that holds the words of <text>
  !mute <user>              keep <user>'s messages off the screen (!unmute <user>)
in scripts also:
  !expect TEXT|/RE/         wait for a line
  !wait S                   pause sending for S seconds

other commands:
  chatsh serve --help             the chat server
  chatsh conform --help           check any server against the protocol

environment: CHATSH_HOST and CHATSH_PORT set the default host and port.
settings: $XDG_CONFIG_HOME/chatsh/config.toml (else ~/.config/chatsh/config.toml),
  read by the shell (not by scripts), e.g.  host = "chat.example.org"  user = "alice"
  timestamps = true  reconnect = false  bell = false  log = "~/chat.log"  color = true
  history = true  store = true  port = 5378; flags win over the environment, which wins over it.
  A wrong line in it is named and skipped; with one and no host given, chatsh exits 2.
exit status: 0 done, 1 error (login refused, --strict failure, a missed !expect),
             2 cannot connect, 3 connection lost or no reply in a script,
             141 a script's reader went away.
"""

CONFORM_EXAMPLES = """\
examples:
  chatsh conform --port 5378                   every case against 127.0.0.1:5378
  chatsh conform --port 5378 --max-clients 64  include the BUSY case
  chatsh conform --port 5378 -k framing --json only the framing cases, as JSON
  chatsh conform --port 5378 --strict --junit conform.xml  warnings fail; JUnit XML too
  chatsh conform --port 5378 --profile chatsh  also chatsh's own name policies
  chatsh conform --port 7001 --peer 10.0.0.6:7001  two nodes of one cluster
"""

SERVE_EXAMPLES = """\
examples:
  chatsh serve                          listen on 127.0.0.1:5378
  chatsh serve --host 0.0.0.0 --port 6000 --max-clients 200
  chatsh serve --cluster redis://10.0.0.5:6379 --node a --host 0.0.0.0
                                        one node of a cluster (run one per machine)
"""


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range (0-65535): {port}")
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
    return value


def _within(least: float, most: float) -> Callable[[str], float]:
    """Seconds from ``least`` to ``most``."""
    def seconds(text: str) -> float:
        value = _seconds(text)
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"must be from {least:g} to {most:g}: {text}")
        return value
    return seconds


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
    return host.strip("[]"), port_number(port)


def _network(text: str) -> Network:
    from .serving.access import network

    try:
        return network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _node_name(text: str) -> str:
    import re

    if not re.fullmatch(NODE_NAME, text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a node name (1-64 of letters, digits, '.', '_', ':', '-')")
    return text


NODE_NAME = r"[A-Za-z0-9._:-]{1,64}"


def _at_most(most: int) -> Callable[[str], int]:
    """A whole number from 1 to ``most``."""
    def whole(text: str) -> int:
        value = _positive(text)
        if value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}: {value}")
        return value
    return whole


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter for examples as written, as wide as the terminal: the width
    found as ``shutil`` would, without importing it (and what it imports) at every start."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()
                                           if sys.__stdout__ else 1).columns
        except (ValueError, OSError):
            columns = 80
    return argparse.RawDescriptionHelpFormatter(prog, width=max(columns, 1) - 2)


def client_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatsh", description="A chat shell for the line-based chat protocol.",
        epilog=CLIENT_EXAMPLES, formatter_class=_formatter)
    parser.add_argument("--version", action="version", version=f"chatsh {__version__}")
    connection = parser.add_argument_group("connection")
    connection.add_argument("--host", help="server to connect to (default: $CHATSH_HOST, "
                            "else a server started in-process)")
    connection.add_argument("--port", type=port_number, help="server port (default: $CHATSH_PORT "
                            f"or {DEFAULT_PORT})")
    connection.add_argument("--user", metavar="NAME", help="log in as NAME")
    connection.add_argument("--max-line", type=_positive, default=CLIENT_MAX_LINE,
                            metavar="BYTES", help="skip server lines longer than this, and "
                            "refuse script lines longer than this, each with a message "
                            f"(default {CLIENT_MAX_LINE})")
    connection.add_argument("--reply-timeout", type=_seconds, default=DEFAULT_REPLY_TIMEOUT,
                            metavar="S", help="when the server owes replies and says nothing "
                            "for S seconds, a script gives up (status 3) and the shell names "
                            f"the line once (default {DEFAULT_REPLY_TIMEOUT:g})")
    _tls_client_options(parser, "the server")
    shell = parser.add_argument_group("shell")
    shell.add_argument("--timestamps", nargs="?", const="%H:%M", metavar="FORMAT",
                       help="prefix lines with the time, [12:34] by default "
                       "(FORMAT as for strftime, e.g. %%H:%%M:%%S)")
    shell.add_argument("--log", metavar="FILE",
                       help="append a chat log to FILE, as irssi keeps one: the messages sent "
                       "and received, one time stamp each (created readable by you only)")
    shell.add_argument("--no-reconnect", dest="reconnect", action="store_false",
                       help="exit (status 3) when the server goes away; by default the shell "
                       "logs in again under the same name, with backoff, keeping your draft")
    shell.add_argument("--reconnect", dest="reconnect", action="store_true",
                       help="log in again when the server goes away (the default)")
    shell.add_argument("--no-bell", action="store_true", help="no terminal bell when a "
                       "message comes from someone you are not writing to")
    shell.add_argument("--no-color", action="store_true", help="no colours (also NO_COLOR=1)")
    shell.add_argument("--no-history", action="store_true", help="do not read or save history")
    shell.add_argument("--no-store", action="store_true",
                       help="keep no messages in the SQLite store under $XDG_DATA_HOME/chatsh "
                       "(!last and !search need it)")
    scripts = parser.add_argument_group("scripts")
    scripts.add_argument("--script", metavar="FILE", help="run the lines of FILE ('-' for "
                         "stdin; a stdin that is no terminal is a script too)")
    scripts.add_argument("-c", metavar="LINE", dest="lines", action="append",
                         help="a script line given here (repeatable), as in sh -c; the "
                         "first is the login name, whatever it holds, unless --user")
    scripts.add_argument("--strict", action="store_true",
                         help="stop with status 1 at the first error")
    scripts.add_argument("--json", action="store_true",
                         help="JSON Lines on stdout: one object per event")
    scripts.add_argument("--expect-timeout", type=_seconds, default=DEFAULT_EXPECT_TIMEOUT,
                         metavar="S", help="seconds a script's !expect waits "
                         f"(default {DEFAULT_EXPECT_TIMEOUT:g})")
    scripts.add_argument("--stop-and-wait", action="store_true",
                         help="send each request only after the reply to the one before "
                         "(for servers that read one request per packet)")
    parser.set_defaults(settings_problems=[], reconnect=None)
    return parser


def _tls_client_options(parser: argparse.ArgumentParser, server: str) -> None:
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true",
                     help=f"speak TLS to {server}, its certificate checked against the "
                     "system's CAs and the host name")
    tls.add_argument("--tls-ca", metavar="FILE", help="check the certificate against the "
                     "CAs in FILE (a private CA) instead; implies --tls")
    tls.add_argument("--tls-cert", metavar="FILE", help="show this client certificate "
                     "(PEM; with its key unless --tls-key) when asked; implies --tls")
    tls.add_argument("--tls-key", metavar="FILE", help="the key of --tls-cert")


def serve_parser() -> argparse.ArgumentParser:
    from .cluster.config import DEFAULT_CLUSTER_NAME, DEFAULT_LEASE, LEASES, MAX_GROUPS
    from .defaults import DEFAULT_MAX_LINE
    from .limits import (
        DEFAULT_MAX_PENDING,
        DEFAULT_MAX_PENDING_PER_ADDRESS,
        DEFAULT_MAX_REFUSALS,
        DEFAULT_MAX_TOTAL_QUEUE,
    )
    from .serverconfig import DEFAULT_MAX_CLIENTS

    parser = argparse.ArgumentParser(
        prog="chatsh serve", description="Run the chat server until Ctrl-C or SIGTERM.",
        epilog=SERVE_EXAMPLES, formatter_class=_formatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=port_number, default=None,
                        help=f"port (default: $CHATSH_PORT or {DEFAULT_PORT})")
    parser.add_argument("--max-clients", type=_positive, default=DEFAULT_MAX_CLIENTS,
                        help=f"logged-in users allowed, echobot not counted "
                        f"(default {DEFAULT_MAX_CLIENTS})")
    parser.add_argument("--max-clients-per-address", type=_positive, default=0, metavar="N",
                        help="logged-in users from one address (an IPv6 /64; 127.0.0.1 "
                        "too); one more gets BUSY (default: three quarters of "
                        "--max-clients, 48 of 64; behind a proxy, set it to --max-clients)")
    parser.add_argument("--max-line", type=_positive, default=DEFAULT_MAX_LINE,
                        help=f"longest request line in bytes (default {DEFAULT_MAX_LINE})")
    parser.add_argument("--max-total-queue", type=_positive, default=DEFAULT_MAX_TOTAL_QUEUE,
                        metavar="BYTES", help="unsent bytes all slow readers together may "
                        f"hold; the slowest is dropped first (default {DEFAULT_MAX_TOTAL_QUEUE})")
    parser.add_argument("--max-pending", type=_positive, default=DEFAULT_MAX_PENDING,
                        metavar="N", help="connections not logged in yet; one more closes "
                        f"the oldest (default {DEFAULT_MAX_PENDING})")
    parser.add_argument("--max-pending-per-address", type=_positive,
                        default=DEFAULT_MAX_PENDING_PER_ADDRESS, metavar="N",
                        help="connections not logged in yet from one address; one more "
                        f"closes its oldest (default {DEFAULT_MAX_PENDING_PER_ADDRESS})")
    parser.add_argument("--close-on-refusal", action="store_true",
                        help="close the connection after IN-USE or a refused name (by "
                        "default it stays open for another HELLO-FROM, as clients that "
                        "retry on the same socket expect; refusal "
                        f"{DEFAULT_MAX_REFUSALS} closes it)")
    tls = parser.add_argument_group("TLS", "speak TLS to clients (a certificate and key in "
                                    "PEM; SIGHUP reads them again, for new connections)")
    tls.add_argument("--tls-cert", metavar="FILE", help="the server's certificate chain")
    tls.add_argument("--tls-key", metavar="FILE",
                     help="its private key, unencrypted (default: in the --tls-cert file)")
    tls.add_argument("--tls-port", type=port_number, metavar="PORT",
                     help="TLS on this port, plain on --port beside it (default: TLS on "
                     "--port alone)")
    tls.add_argument("--tls-client-ca", metavar="FILE",
                     help="mutual TLS: let in only clients showing a certificate signed by "
                     "a CA in FILE")
    parser.add_argument("--metrics", type=_address, metavar="HOST:PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics and the "
                        "server's health at /healthz (e.g. 127.0.0.1:9378)")
    parser.add_argument("--drain-timeout", type=_seconds, default=5.0, metavar="S",
                        help="on SIGTERM, seconds to answer what was read and write what is "
                        "queued before closing (default 5; a second SIGTERM stops at once)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="text (default): lines on stderr; json: one object a line "
                        "(time, level, event, peer, user, message)")
    parser.add_argument("--allow", type=_network, action="append", metavar="CIDR",
                        help="serve only these addresses, e.g. 10.0.0.0/8 (repeatable); "
                        "others are closed before a byte of the protocol")
    cluster = parser.add_argument_group(
        "cluster", "run as one node of a chat spread over machines, on a Redis or Valkey "
        "engine (needs the extra: pip install 'chatshell[cluster]')")
    cluster.add_argument("--cluster", metavar="URL",
                         help="the engine, e.g. redis://127.0.0.1:6379/0; the Redis "
                         "Sentinels that name it: redis+sentinel://HOST:26379[,HOST...]/SERVICE; "
                         "or any shards of a Redis Cluster: redis+cluster://HOST:PORT[,HOST...]")
    cluster.add_argument("--node", type=_node_name, default=None, metavar="NAME",
                         help="this node's name, unique in the cluster (default: "
                         "<host name>-<process id>)")
    cluster.add_argument("--cluster-name", type=_node_name, metavar="NAME",
                         help="keeps several clusters apart on one engine "
                         f"(default {DEFAULT_CLUSTER_NAME})")
    cluster.add_argument("--lease", type=_within(*LEASES), metavar="S",
                         help=f"seconds a dead node's names stay taken ({LEASES[0]:g} to "
                         f"{LEASES[1]:g}, default {DEFAULT_LEASE:g})")
    cluster.add_argument("--groups", type=_at_most(MAX_GROUPS), metavar="K",
                         help="split the cluster's names into K groups, which a Redis Cluster "
                         f"spreads over its shards (the same on every node; 1 to {MAX_GROUPS}, "
                         "default 1)")
    return parser


def conform_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatsh conform", description="Check a chat server against the protocol, "
        "case by case; exit status 0 only when no required case failed (with --strict, "
        "no recommended one either).",
        epilog=CONFORM_EXAMPLES, formatter_class=_formatter)
    parser.add_argument("--host", default="127.0.0.1", help="server (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=None,
                        help=f"port (default: $CHATSH_PORT or {DEFAULT_PORT})")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds each case may take (large ones a few times that)")
    parser.add_argument("--max-clients", type=_positive, default=None,
                        help="the server's user limit, to check BUSY (skipped without it)")
    parser.add_argument("--peer", type=_address, metavar="HOST:PORT",
                        help="another node of the same cluster: adds the cases that check "
                        "both behave as one server")
    parser.add_argument("--strict", action="store_true",
                        help="a recommended case that fails is a failure, not a warning")
    parser.add_argument("--profile", choices=("protocol", "chatsh"), default="protocol",
                        help="protocol (default): what the protocol requires and recommends; "
                        "chatsh: also chatsh's own name policies (length, invisible "
                        "characters, look-alikes)")
    parser.add_argument("--json", action="store_true", help="one JSON object with every outcome")
    parser.add_argument("--junit", metavar="FILE",
                        help="also write the outcomes to FILE as JUnit XML")
    parser.add_argument("-k", metavar="PATTERN", dest="patterns", action="append",
                        help="only the cases whose id or name contains PATTERN (repeat "
                        "for several)")
    _tls_client_options(parser, "the server (and --peer)")
    return parser
