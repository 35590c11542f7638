"""Command line: parse arguments (:mod:`chatsh.arguments`) and hand over to one mode.

Nothing here imports prompt_toolkit; only the interactive mode does, so scripts,
``serve`` and ``--version`` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .arguments import client_parser, conform_parser, port_number, serve_parser
from .defaults import DEFAULT_PORT

TYPE_CHECKING = False  # True for the type checker only: importing typing takes 3 ms
if TYPE_CHECKING:
    import ssl

    from .engine import ClientEngine

def _chosen_port(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int | None:
    """``--port``, else ``$CHATSH_PORT``, else None (the caller's default)."""
    if args.port is not None:
        port: int = args.port
        return port
    value = os.environ.get("CHATSH_PORT")
    if not value:
        return None
    try:
        return port_number(value)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"CHATSH_PORT: {exc}")


def _tls_context(parser: argparse.ArgumentParser, args: argparse.Namespace
                 ) -> ssl.SSLContext | None:
    """The client's TLS context, None without --tls; a file it cannot use ends the
    program in one line (status 2)."""
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key goes with --tls-cert")
    if not (args.tls or args.tls_ca or args.tls_cert):
        return None
    from .sanitize import sanitize
    from .tls import TlsError, client_context

    try:
        return client_context(args.tls_ca, args.tls_cert, args.tls_key)
    except TlsError as exc:
        print(f"{parser.prog}: {sanitize(str(exc))}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["serve"]:
            return _serve(args[1:])
        if args[:1] == ["conform"]:
            return _conform(args[1:])
        return _client(args)
    except KeyboardInterrupt:
        return 130


def _serve(argv: list[str]) -> int:
    from .modes import serve
    from .serverconfig import ServerConfig

    parser = serve_parser()
    args = parser.parse_args(argv)
    port = _chosen_port(parser, args)
    config = ServerConfig(max_clients=args.max_clients,
                          max_clients_per_address=args.max_clients_per_address,
                          max_line=args.max_line,
                          max_total_queue=args.max_total_queue, max_pending=args.max_pending,
                          max_pending_per_address=args.max_pending_per_address,
                          close_on_refusal=args.close_on_refusal)
    cluster = None
    if args.cluster:
        import socket

        from .cluster.config import DEFAULT_CLUSTER_NAME, DEFAULT_LEASE, ClusterConfig

        cluster = ClusterConfig(args.cluster, args.node or f"{socket.gethostname()}-{os.getpid()}",
                                args.cluster_name or DEFAULT_CLUSTER_NAME,
                                args.lease or DEFAULT_LEASE, args.max_line, args.groups or 0)
    elif args.node or args.cluster_name or args.lease or args.groups:
        parser.error("--node, --cluster-name, --lease and --groups go with --cluster URL")
    if (args.tls_key or args.tls_client_ca or args.tls_port is not None) and not args.tls_cert:
        parser.error("--tls-key, --tls-client-ca and --tls-port go with --tls-cert FILE")
    tls = serve.TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    return serve.run(args.host, DEFAULT_PORT if port is None else port, config, cluster,
                     serve.ServeOptions(tls, args.tls_port, args.allow, args.metrics,
                                        args.log_format, args.drain_timeout))


def _conform(argv: list[str]) -> int:
    from .modes import conform

    parser = conform_parser()
    args = parser.parse_args(argv)
    port = _chosen_port(parser, args)
    return conform.run(args.host, DEFAULT_PORT if port is None else port, conform.ConformOptions(
        args.timeout, args.max_clients, args.patterns, args.json, args.peer, args.strict,
        args.profile, args.junit, _tls_context(parser, args)))


def _client(argv: list[str]) -> int:
    parser = client_parser()
    args = parser.parse_args(argv)
    if args.lines and args.script is not None:
        parser.error("give the script with --script or with -c, not both")
    if args.lines or args.script is not None or not sys.stdin.isatty():
        return _connect_and_run(parser, args)
    from .config import fill_in

    refusal = fill_in(args)
    if refusal is not None:
        print(*args.settings_problems, refusal, sep="\n", file=sys.stderr)
        return 2
    from .ui.echo import typed_keys_hidden

    with typed_keys_hidden(sys.stdin.fileno()):
        return _connect_and_run(parser, args)


def _connect_and_run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .engine import ClientEngine

    host = args.host or os.environ.get("CHATSH_HOST") or None
    port = _chosen_port(parser, args)
    tls = _tls_context(parser, args)
    embedded = None
    if tls is not None and host is None and port is None:
        parser.error("--tls needs a server to speak to: --host or --port")
    if host is None and port is None:
        from .embedded import EmbeddedServer

        try:
            embedded = EmbeddedServer().start()
        except OSError as exc:
            print(f"chatsh: cannot start the embedded server: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
        host, port = embedded.host, embedded.port
    engine = ClientEngine(host or "127.0.0.1", DEFAULT_PORT if port is None else port,
                          max_line=args.max_line, tls=tls)
    try:
        return _run_client(args, engine, embedded is not None)
    finally:
        engine.leave()
        if embedded is not None:
            embedded.stop()


def _run_client(args: argparse.Namespace, engine: ClientEngine, embedded: bool) -> int:
    if args.lines or args.script is not None or not sys.stdin.isatty():
        from .modes import script

        options = script.ScriptOptions(user=args.user, strict=args.strict,
                                       expect_timeout=args.expect_timeout,
                                       reply_timeout=args.reply_timeout,
                                       stop_and_wait=args.stop_and_wait)
        runner = script.ScriptRunner
        if args.json:
            from .modes.jsonl import JsonScriptRunner

            runner = JsonScriptRunner
        if args.lines:
            lines = [line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                     for line in args.lines]
            return script.run(engine, lines, options, runner)
        if args.script in (None, "-"):
            with open(sys.stdin.fileno(), "rb", closefd=False) as stdin:
                return script.run(engine, stdin, options, runner)
        try:
            source = open(args.script, "rb")
        except OSError as exc:
            print(f"chatsh: cannot read script {args.script}: {exc.strerror}", file=sys.stderr)
            return 2
        with source:
            return script.run(engine, source, options, runner)
    from .modes import repl

    return repl.run(engine, repl.ReplOptions(
        user=args.user, timestamps=args.timestamps, color=not args.no_color,
        history=not args.no_history, reconnect=args.reconnect is not False, embedded=embedded,
        log=args.log, bell=not args.no_bell, store=not args.no_store,
        settings_problems=tuple(args.settings_problems), reply_timeout=args.reply_timeout))
