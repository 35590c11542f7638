"""``chatsh serve``: the server in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from ..server import ChatServer, ServerConfig, log_to_stderr


async def _serve(host: str, port: int, config: ServerConfig) -> int:
    server = ChatServer(config)
    try:
        await server.start(host, port)
    except OSError as exc:
        log_to_stderr(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return 2
    log_to_stderr(f"listening on {host}:{server.port} (max {config.max_clients} users)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log_to_stderr("shutting down")
    await server.stop()
    return 0


def run(host: str, port: int, config: ServerConfig) -> int:
    return asyncio.run(_serve(host, port, config))
