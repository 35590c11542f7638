"""A server connection's reading: paused while a task answers a read and while its output
is backed up, and what comes meanwhile answered after, in order (a fake transport and
host, no socket)."""

from __future__ import annotations

import asyncio

from chatsh.serving.connection import Connection


class ReadingTransport:
    """A transport that says whether it reads."""

    reading = True

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class RecordingHost:
    """A connection's host that records what it is asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def received(self, conn: Connection, data: bytes) -> None:
        self.calls.append(("received", data))

    def ended(self, conn: Connection) -> None:
        self.calls.append(("ended", b""))


def test_reading_resumes_only_once_neither_a_task_nor_the_output_holds_it() -> None:
    """Reading pauses while a task answers a read and while the connection's output is
    backed up: the end of the one does not resume what the other still pauses."""
    async def check(backed_up_first: bool) -> None:
        alice = Connection(RecordingHost(), 1 << 20, False)  # type: ignore[arg-type]
        transport = alice.transport = ReadingTransport()  # type: ignore[assignment]
        answered = asyncio.Event()

        async def answer() -> bool:
            await answered.wait()
            return True

        if backed_up_first:
            alice.pause_writing()
        alice.wait_for(answer())
        task = alice.task
        assert task is not None
        if not backed_up_first:
            alice.pause_writing()
        assert not transport.reading
        answered.set()
        await task
        assert alice.task is None and not transport.reading  # the output still holds it
        alice.resume_writing()
        assert transport.reading
        alice.pause_writing()
        alice.wait_for(answer())
        alice.resume_writing()
        assert not transport.reading  # the task still holds it
        await alice.task  # type: ignore[misc]
        assert transport.reading

    for backed_up_first in (False, True):
        asyncio.run(check(backed_up_first))


class ClosingTransport(ReadingTransport):
    closed = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_what_comes_while_a_task_answers_is_answered_after_it_in_order_then_the_end() -> None:
    """Reads that come while a task answers an earlier one wait, and are answered in the
    order they came once it is done; the peer's end that came meanwhile closes the
    connection after them."""
    async def check() -> None:
        host = RecordingHost()
        conn = Connection(host, 1 << 20, False)  # type: ignore[arg-type]
        transport = conn.transport = ClosingTransport()  # type: ignore[assignment]
        answered = asyncio.Event()

        async def answer() -> bool:
            await answered.wait()
            return True

        conn.wait_for(answer())
        task = conn.task
        for data in (b"SEND bob 1\n", b"SEND bob 2\n", b"SEND bob 3\n"):
            conn.data_received(data)
        assert conn.eof_received() is True  # (kept half open until the answers are out)
        assert host.calls == [] and not transport.closed
        answered.set()
        await task  # type: ignore[misc]
        assert host.calls == [("received", b"SEND bob 1\n"), ("received", b"SEND bob 2\n"),
                              ("received", b"SEND bob 3\n"), ("ended", b"")]
        assert transport.closed

    asyncio.run(check())


def test_an_answer_cancelled_before_it_began_is_closed() -> None:
    """A connection lost right after a read hands its answer to a task: the task,
    cancelled before its first step, left the answer's coroutine never awaited (a
    RuntimeWarning at the next collection, in the server's log)."""
    import gc
    import warnings

    began: list[bool] = []

    async def answer() -> bool:
        began.append(True)
        return True

    async def check() -> None:
        alice = Connection(RecordingHost(), 1 << 20, False)  # type: ignore[arg-type]
        alice.transport = ReadingTransport()  # type: ignore[assignment]
        alice.wait_for(answer())
        task = alice.task
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(check())
        gc.collect()
    assert not began
    assert not [w for w in caught if "never awaited" in str(w.message)]
