"""``chatsh serve``: the server in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from typing import TYPE_CHECKING

from ..backplane import Backplane, BackplaneError
from ..server import ChatServer, ServerConfig
from ..serverlog import log_to_stderr
from .collector import quiet_collector

if TYPE_CHECKING:
    from ..cluster.config import ClusterConfig


async def _cluster_backplane(cluster: ClusterConfig) -> Backplane:
    try:
        from ..cluster.backplane import RedisBackplane
        from ..cluster.engines import as_cluster_if_sharded
    except ImportError as exc:
        raise BackplaneError(f"--cluster needs the cluster extra ({exc.msg}): "
                             "pip install 'chatshell[cluster]'") from None
    try:
        sharded = await as_cluster_if_sharded(cluster.url)
        if sharded is not None:
            log_to_stderr(f"the engine at {cluster.url} is a Redis Cluster: finding its "
                          f"shards from there ({sharded})")
            cluster = dataclasses.replace(cluster, url=sharded)
        return RedisBackplane(cluster, log_to_stderr)
    except ValueError as exc:
        raise BackplaneError(f"--cluster {cluster.url}: {exc}") from None


async def _serve(host: str, port: int, config: ServerConfig,
                 cluster: ClusterConfig | None) -> int:
    try:
        backplane = await _cluster_backplane(cluster) if cluster else None
        server = ChatServer(config, backplane=backplane)
        await server.start(host, port)
    except BackplaneError as exc:
        log_to_stderr(str(exc))
        return 2
    except OSError as exc:
        log_to_stderr(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return 2
    except UnicodeError:
        log_to_stderr(f"cannot listen on {host}:{port}: not a valid host name")
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before the line that says it listens
        loop.add_signal_handler(signum, stop.set)
    where = f"node {cluster.node} of cluster {cluster.cluster}, " if cluster else ""
    log_to_stderr(f"listening on {host}:{server.port} ({where}max {config.max_clients} users)")
    await stop.wait()
    log_to_stderr("shutting down")
    await server.stop()
    return 0


def run(host: str, port: int, config: ServerConfig, cluster: ClusterConfig | None = None) -> int:
    quiet_collector()
    return asyncio.run(_serve(host, port, config, cluster))
