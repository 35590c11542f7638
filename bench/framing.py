"""The line framer is O(n): one 100 MB line costs the same fed in any chunk size.

Times LineFramer on a 100 MB line fed in 64 KiB and 4 KiB chunks, next to a
ceiling measured in the same run (one bytes.find over the whole line plus one
join of the chunks: the least work any framer must do), and a naive framer that
searches its whole buffer again for every chunk, on a smaller line (it is
quadratic, so 100 MB would take minutes).

    python bench/framing.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatsh.framing import LineFramer  # noqa: E402

MB = 1024 * 1024


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def framer_time(chunks: list[bytes]) -> float:
    framer = LineFramer(max_line=1 << 31)
    start = time.perf_counter()
    for chunk in chunks:
        lines = framer.feed(chunk)
    elapsed = time.perf_counter() - start
    assert len(lines) == 1
    return elapsed


def ceiling_time(chunks: list[bytes]) -> float:
    start = time.perf_counter()
    joined = b"".join(chunks)
    assert joined.find(b"\n") == len(joined) - 1
    return time.perf_counter() - start


def naive_time(chunks: list[bytes]) -> float:
    start = time.perf_counter()
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        if buffer.find(b"\n") >= 0:
            break
    return time.perf_counter() - start


def main() -> None:
    line = b"x" * (100 * MB) + b"\n"
    print("100 MB line:")
    for size in (64 * 1024, 4 * 1024):
        chunks = chunks_of(line, size)
        ours, ceiling = framer_time(chunks), ceiling_time(chunks)
        print(f"  {size // 1024:>2} KiB chunks: LineFramer {ours:6.3f} s, ceiling {ceiling:6.3f} s,"
              f" ratio {ours / ceiling:5.2f}, {len(line) / ours / MB:7.0f} MB/s")
    small = b"x" * (8 * MB) + b"\n"
    chunks = chunks_of(small, 4 * 1024)
    ours, naive = framer_time(chunks), naive_time(chunks)
    print(f"8 MB line in 4 KiB chunks: LineFramer {ours:.3f} s, naive re-searching framer "
          f"{naive:.3f} s ({naive / ours:.0f}x slower)")


if __name__ == "__main__":
    main()
