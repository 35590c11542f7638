import time

from hypothesis import given
from hypothesis import strategies as st

from chatsh.framing import LineFramer, OversizedLine


def feed_all(chunks, max_line=1 << 30):
    framer = LineFramer(max_line)
    out = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out, framer


@st.composite
def stream_and_splits(draw):
    pieces = draw(st.lists(st.sampled_from([b"\n", b"a", b"\r", b" ", b"\xc3", b"\xa9"]),
                           max_size=400))
    data = b"".join(pieces)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=30)))
    chunks, start = [], 0
    for cut in cuts + [len(data)]:
        chunks.append(data[start:cut])
        start = cut
    return data, chunks


@given(stream_and_splits())
def test_any_split_gives_the_same_lines(case):
    data, chunks = case
    lines, framer = feed_all(chunks)
    expected = data.split(b"\n")
    assert lines == expected[:-1]
    assert framer.pending == len(expected[-1])


def test_lines_in_one_chunk_and_a_held_tail():
    lines, framer = feed_all([b"a\nbb\n\nccc"])
    assert lines == [b"a", b"bb", b""]
    assert framer.pending == 3
    assert framer.feed(b"c\n") == [b"cccc"]


def test_multi_megabyte_line_in_one_byte_and_64k_chunks():
    line = bytes(range(256)).replace(b"\n", b"-") * (3 * 4096)  # 3 MiB
    data = line + b"\nnext\n"
    for size in (65536, 1):
        payload = data if size > 1 else data[: 200_000] + b"\n"
        chunks = [payload[i:i + size] for i in range(0, len(payload), size)]
        lines, _ = feed_all(chunks)
        if size > 1:
            assert lines == [line, b"next"]
        else:
            assert lines == [line[:200_000]]


def test_over_long_line_is_reported_once_and_dropped():
    framer = LineFramer(max_line=10)
    out = framer.feed(b"0123456789ABC")
    assert out == [OversizedLine(10)]
    assert framer.feed(b"still the same line") == []
    assert framer.pending == 0
    assert framer.feed(b" end\nok\n") == [b"ok"]


def test_over_long_line_inside_one_chunk():
    framer = LineFramer(max_line=4)
    assert framer.feed(b"short\nok\n") == [OversizedLine(4), b"ok"]
    assert framer.feed(b"abcd\n") == [b"abcd"]


def test_a_line_past_hand_over_comes_out_as_the_bytearray_it_grew_in():
    framer = LineFramer(hand_over=8)
    assert framer.feed(b"short\n0123") == [b"short"]
    assert framer.feed(b"45\n") == [b"012345"]
    assert type(framer.feed(b"0123")) is list
    long_line, after = framer.feed(b"456789\nafter\n")
    assert type(long_line) is bytearray and long_line == b"0123456789"
    assert type(after) is bytes and after == b"after"
    assert framer.feed(b"cut short of its end") == []
    rest = framer.rest()
    assert type(rest) is bytearray and rest == b"cut short of its end"
    assert framer.pending == 0 and framer.rest() is None


def test_twenty_megabytes_in_small_pieces_make_one_line():
    """(Its cost is measured by bench/framing.py.)"""
    framer = LineFramer()
    piece = b"x" * 1024
    for _ in range(20 * 1024):
        assert framer.feed(piece) == []
    assert framer.feed(b"\n") == [b"x" * (20 * 1024 * 1024)]


def _cpu_seconds_to_frame(size: int, chunk: int = 4096) -> float:
    piece = b"x" * chunk
    framer = LineFramer(max_line=1 << 30)
    start = time.process_time()
    for _ in range(size // chunk):
        framer.feed(piece)
    assert framer.feed(b"\n") == [b"x" * (size // chunk * chunk)]
    return time.process_time() - start


def test_framing_cost_grows_linearly_with_the_line():
    """16 times the bytes may cost 16 times the work, not 256 (a framer that re-searches)."""
    small = min(_cpu_seconds_to_frame(512 << 10) for _ in range(3))
    large = min(_cpu_seconds_to_frame(8 << 20) for _ in range(3))
    assert large < 64 * max(small, 0.001), (small, large)


def test_a_line_of_exactly_the_cap_passes_one_byte_more_does_not():
    framer = LineFramer(max_line=8)
    assert framer.feed(b"12345678\n") == [b"12345678"]
    assert framer.feed(b"123456789\n") == [OversizedLine(8)]
    assert framer.feed(b"1234") == [] and framer.feed(b"5678\n") == [b"12345678"]
    assert framer.feed(b"1234") == [] and framer.feed(b"56789\n") == [OversizedLine(8)]
