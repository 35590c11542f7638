"""The server in a thread of the shell's process ends with nothing left running."""

import asyncio

from chatsh.embedded import EmbeddedServer
from chatsh.server import ChatServer


def test_a_task_begun_while_the_server_stops_is_ended_too(monkeypatch):
    """A login read while the server stops starts a task after the tasks were cancelled:
    it was left pending on a closed loop (its coroutine never awaited)."""
    stop = ChatServer.stop
    begun: list[asyncio.Task[None]] = []

    async def begins_another_when_cancelled() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            begun.append(asyncio.get_running_loop().create_task(asyncio.sleep(60)))

    async def stop_then_begin(self: ChatServer) -> None:
        await stop(self)
        asyncio.get_running_loop().create_task(begins_another_when_cancelled())
        await asyncio.sleep(0)  # it has begun

    monkeypatch.setattr(ChatServer, "stop", stop_then_begin)
    server = EmbeddedServer().start()
    server.stop()
    assert server._loop.is_closed()
    assert begun and all(task.done() for task in begun)
