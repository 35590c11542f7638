"""The server gives freed memory back once for a burst of queues let go."""

from __future__ import annotations

import asyncio

from chatsh.serving.trim import TRIM_AFTER, Trimmer


def test_a_burst_of_queues_let_go_is_one_trim_after_a_pause():
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    async def burst() -> None:
        trimmer = Trimmer(trim)
        for _ in range(50):
            trimmer.let_go()
        assert calls == []  # not while the closes come
        await asyncio.sleep(TRIM_AFTER * 1.5)
        assert calls == [0]
        trimmer.let_go()  # a later one is a trim of its own
        trimmer.close()  # ... unless the server stops first
        await asyncio.sleep(TRIM_AFTER * 1.5)
        assert calls == [0]

    asyncio.run(burst())


def test_without_malloc_trim_nothing_is_asked():
    async def let_go() -> None:
        trimmer = Trimmer(None)
        trimmer.let_go()
        assert not asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]

    asyncio.run(let_go())
