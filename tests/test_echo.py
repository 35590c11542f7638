"""Keys typed while chatsh starts are not echoed raw; the terminal's settings come back."""

import os
import pty
import select
import termios

from chatsh.ui.echo import typed_keys_hidden


def echoed(master: int, keys: bytes) -> bytes:
    """What the terminal shows after ``keys`` are typed (its echo)."""
    os.write(master, keys)
    shown = b""
    while select.select([master], [], [], 0.2)[0]:
        shown += os.read(master, 1024)
    return shown


def test_echo_is_off_inside_and_restored_after():
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        assert echoed(master, b"a") == b"a"
        with typed_keys_hidden(slave):
            assert echoed(master, b"bob") == b""
        assert termios.tcgetattr(slave) == before
        assert echoed(master, b"c") == b"c"
        termios.tcsetattr(slave, termios.TCSANOW, [*before[:3], before[3] & ~termios.ICANON,
                                                   *before[4:]])
        assert os.read(slave, 16) == b"abobc"  # the hidden keys were kept for the prompt
    finally:
        os.close(master)
        os.close(slave)


def test_not_a_terminal_is_left_alone(tmp_path):
    with open(tmp_path / "file", "w") as file, typed_keys_hidden(file.fileno()):
        pass
