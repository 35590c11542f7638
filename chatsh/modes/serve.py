"""``chatsh serve``: the server in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import signal
from typing import TYPE_CHECKING

from ..backplane import BackplaneError
from ..sanitize import sanitize
from ..server import ChatServer
from ..serverconfig import ServerConfig
from ..serverlog import Log, LogLine, log_to_stderr
from ..serving.access import Allowed, Network
from ..serving.jsonlog import log_json
from ..serving.loops import event_loop
from ..serving.tls import ServerTls
from ..tls import TlsError, reason, regular_files
from .collector import quiet_collector

if TYPE_CHECKING:
    from ..cluster.backplane import RedisBackplane
    from ..cluster.config import ClusterConfig


async def _cluster_backplane(cluster: ClusterConfig, log: Log) -> RedisBackplane:
    try:
        from ..cluster.backplane import RedisBackplane
        from ..cluster.engines import as_cluster_if_sharded, tls_files
        from ..cluster.groups import default_count
    except ImportError as exc:
        raise BackplaneError(f"--cluster needs the cluster extra ({exc.msg}): "
                             "pip install 'chatshell[cluster]'") from None
    try:
        regular_files(*tls_files(cluster.url))
    except OSError as exc:
        raise BackplaneError(f"--cluster: cannot use the engine's TLS files: {reason(exc)}"
                             ) from None
    try:
        sharded = await as_cluster_if_sharded(cluster.url)
        if sharded is not None:
            log(f"the engine at {cluster.url} is a Redis Cluster: finding its shards from "
                f"there ({sharded})")
            cluster = dataclasses.replace(cluster, url=sharded)
        if not cluster.groups:
            cluster = dataclasses.replace(
                cluster, groups=await default_count(cluster.url, cluster.cluster))
        return RedisBackplane(cluster, log)
    except ValueError as exc:
        raise BackplaneError(f"--cluster {cluster.url}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert: str
    key: str | None = None
    client_ca: str | None = None


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How clients come in (TLS, on its own port or on the only one; from where) and how
    the server is watched."""

    tls: TlsFiles | None = None
    tls_port: int | None = None
    allow: list[Network] | None = None
    metrics: tuple[str, int] | None = None
    """Where to serve /metrics and /healthz."""
    log_format: str = "text"
    """``text`` (lines with a prefix) or ``json`` (an object a line)."""
    drain_timeout: float = 5.0
    """Seconds a stop may take to answer what was read and write what is queued."""


class CannotServe(Exception):
    """Something the server needs cannot start; the message says why in one line."""


def _why(exc: OSError | UnicodeError) -> str:
    """Why an address cannot be listened on, in a few words."""
    if isinstance(exc, UnicodeError):
        return "not a valid host name"
    if exc.errno == errno.EADDRINUSE:  # (asyncio's own words repeat the address)
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)


def _listening(host: str, server: ChatServer) -> str:
    """Where the server listens, as the log says it."""
    where, tls_port = f"{host}:{server.port}", server.listeners.tls_port
    if server.door.tls is None:
        return where
    return f"{where} and {host}:{tls_port} with TLS" if tls_port else f"{where} with TLS"


async def _watch(server: ChatServer, backplane: RedisBackplane | None,
                 where: tuple[str, int]) -> str:
    """Serve /metrics and /healthz at ``where`` (OSError if it cannot listen there); the
    line that says where."""
    from ..serving.metrics import MetricsEndpoint, Sources

    def health() -> str | None:
        if not server.listeners:
            return "starting"
        if server.stopping.draining:
            return "draining"
        if backplane is not None and not backplane.reach()[0]:
            return "the cluster engine is out of reach"
        return None

    endpoint = MetricsEndpoint(Sources(server.stats, lambda: len(server.users),
                                       lambda: len(server.pending), health, backplane))
    try:
        port = await endpoint.start(*where)
    except (OSError, UnicodeError) as exc:
        raise CannotServe(f"cannot serve metrics on {where[0]}:{where[1]}: {_why(exc)}"
                          ) from None
    return f"metrics on http://{where[0]}:{port}/metrics, health on /healthz"


async def _serve(host: str, port: int, config: ServerConfig,
                 cluster: ClusterConfig | None, options: ServeOptions, loop_name: str) -> int:
    """``loop_name``: which event loop serves, in words."""
    log = log_json if options.log_format == "json" else log_to_stderr
    files = options.tls
    try:
        tls = ServerTls(files.cert, files.key, files.client_ca) if files else None
        backplane = await _cluster_backplane(cluster, log) if cluster else None
        server = ChatServer(config, log, backplane, tls,
                            Allowed(options.allow) if options.allow else None)
        watching = await _watch(server, backplane, options.metrics) if options.metrics else ""
        await server.start(host, port, options.tls_port)
    except (TlsError, BackplaneError, CannotServe) as exc:  # (they name the operator's files)
        log(LogLine(sanitize(str(exc)), "not_started", level="error"))
        return 2
    except (OSError, UnicodeError) as exc:
        log(LogLine(f"cannot listen on {sanitize(host)}:{port}: {_why(exc)}", "not_started",
                    level="error"))
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before the line that says it listens
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: log(
        tls.reload() if tls else LogLine("SIGHUP: nothing to read again (no --tls-cert)",
                                         "tls_reload_failed", level="warning")))
    if tls and (warning := tls.warning()):
        log(warning)
    node = f"node {cluster.node} of cluster {cluster.cluster}, " if cluster else ""
    log(LogLine(f"listening on {_listening(host, server)} ({node}max {config.max_clients} "
                "users)", "listening"))
    if watching:
        log(LogLine(watching, "metrics"))
    log(LogLine(f"event loop: {loop_name}", "event_loop"))
    await stop.wait()
    log(LogLine(f"shutting down: accepting no more, answering what was read and writing "
                f"what is queued (at most {options.drain_timeout:g} s; a second signal stops "
                "at once)", "stopping"))
    draining = asyncio.ensure_future(server.drain(options.drain_timeout))
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, draining.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await draining
    await server.stop()
    log(LogLine("stopped", "stopped"))
    return 0


def run(host: str, port: int, config: ServerConfig, cluster: ClusterConfig | None = None,
        options: ServeOptions | None = None) -> int:
    quiet_collector()
    new_loop, which = event_loop()
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(_serve(host, port, config, cluster, options or ServeOptions(),
                                 which))
