"""The server log's bound per address, with a clock the test turns by hand."""

from chatsh.serverlog import PeerLog


class Timers:
    """``loop.call_later`` by hand: :meth:`run` calls what is due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.due: list[tuple[float, object]] = []
        self.cancelled = 0

    def schedule(self, delay, call):
        timers = self

        class Handle:
            def cancel(self) -> None:
                timers.due.remove((at, call))
                timers.cancelled += 1

        at = self.now + delay
        self.due.append((at, call))
        return Handle()

    def run(self, until: float) -> None:
        self.now = until
        for entry in sorted((entry for entry in self.due if entry[0] <= until),
                            key=lambda entry: entry[0]):
            self.due.remove(entry)
            entry[1]()


def make_log(burst=3, window=10.0):
    lines: list[str] = []
    timers = Timers()
    return PeerLog(lines.append, timers.schedule, burst, window), lines, timers


def test_a_burst_per_window_then_one_line_with_the_count():
    log, lines, timers = make_log()
    for index in range(1000):
        log.about("10.0.0.1", f"line {index}")
    assert lines == ["line 0", "line 1", "line 2"]
    timers.run(10.0)
    assert lines[3:] == ["10.0.0.1: 997 more lines about this address left out "
                         "(over 3 in 10 s)"]
    log.about("10.0.0.1", "next window")  # a new window, a new burst
    assert lines[-1] == "next window"
    timers.run(20.0)
    assert len(lines) == 5  # nothing was left out: no count line


def test_one_address_never_holds_back_another():
    log, lines, timers = make_log(burst=2)
    for index in range(50):
        log.about("10.0.0.1", f"flood {index}")
    log.about("10.0.0.2", "other")
    assert lines == ["flood 0", "flood 1", "other"]


def test_flush_ends_every_window_at_once():
    log, lines, timers = make_log(burst=1)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        log.about(address, address)
        log.about(address, address)
    log.about("10.0.0.3", "once more")
    log.flush()
    assert lines[3:] == [
        "10.0.0.1: 1 more line about this address left out (over 1 in 10 s)",
        "10.0.0.2: 1 more line about this address left out (over 1 in 10 s)",
        "10.0.0.3: 2 more lines about this address left out (over 1 in 10 s)"]
    assert timers.cancelled == 3 and timers.due == []
    log.about("10.0.0.1", "after")
    assert lines[-1] == "after"


def test_past_max_addresses_the_others_share_one_window():
    """A flood from many addresses (an IPv6 block) keeps a bounded number of windows."""
    lines: list[str] = []
    timers = Timers()
    log = PeerLog(lines.append, timers.schedule, burst=2, window=10.0, max_addresses=3)
    for index in range(1000):
        log.about(f"2001:db8::{index}", f"from {index}")
    assert lines == ["from 0", "from 1", "from 2", "from 3", "from 4"]
    assert len(timers.due) == 4
    timers.run(10.0)
    assert lines[-1] == "other addresses: 995 more lines about them left out (over 2 in 10 s)"
    log.about("2001:db8::999", "a new window")
    assert lines[-1] == "a new window"
