"""Run the real chatsh in a pseudo-terminal and read its screen through pyte."""

from __future__ import annotations

import signal
import socket
import termios
import time

import pexpect
import pyte
from conftest import CHATSH, DEADLINE, chatsh_env


def _as_from_a_shell() -> None:
    """Ctrl-C and Ctrl-\\ as an interactive shell gives them to its jobs.

    A test run started in the background (as CI may start it) inherits SIGINT and
    SIGQUIT ignored; a person's terminal does not.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class Terminal:
    """chatsh in a pty; ``screen_text`` is what a person would see."""

    def __init__(self, *args: str, rows: int = 24, cols: int = 100, env_extra=None,
                 program: str = CHATSH) -> None:
        self.answers_cpr = (env_extra or {}).get("PROMPT_TOOLKIT_NO_CPR") == "0"
        """Whether chatsh may ask where the cursor is (it is then answered, as real
        terminals answer; prompt_toolkit draws the bottom toolbar only then)."""
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.held_answers: list[str] | None = None
        """Answers to cursor position requests kept back (a slow link) while a list."""
        self.child = pexpect.spawn(program, [*args],
                                   env=chatsh_env(**{"TERM": "xterm-256color",
                                                     **(env_extra or {})}),
                                   dimensions=(rows, cols), preexec_fn=_as_from_a_shell)

    def pump(self, timeout: float = 0.05) -> None:
        try:
            data = self.child.read_nonblocking(1 << 20, timeout=timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            return
        self.raw += data
        if not self.answers_cpr:
            self.stream.feed(data)
            return
        *before, after = data.split(b"\x1b[6n")
        for piece in before:  # where the cursor is when asked, as terminals say
            self.stream.feed(piece)
            cursor = self.screen.cursor
            answer = f"\x1b[{cursor.y + 1};{cursor.x + 1}R"
            if self.held_answers is None:
                self.child.send(answer)
            else:
                self.held_answers.append(answer)
        self.stream.feed(after)

    def hold_answers(self) -> None:
        """Keep answers to cursor position requests back until :meth:`send_answers`."""
        self.held_answers = []

    def send_answers(self) -> None:
        for answer in self.held_answers or []:
            self.child.send(answer)
        self.held_answers = None

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def flowed_text(self) -> str:
        """The rows end to end as the terminal holds them, spaces kept: a line the
        terminal wrapped reads whole here, wherever the wrap fell."""
        return "".join(self.screen.display)

    @property
    def screen_text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, predicate, timeout: float = DEADLINE, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.screen_text):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}; screen:\n"
                                     + self.screen_text)
            if not self.child.isalive():
                self.pump(0.01)
                if predicate(self.screen_text):
                    return
                raise AssertionError(f"chatsh exited waiting for {what}; screen:\n"
                                     + self.screen_text)
            self.pump()

    def wait_text(self, text: str, timeout: float = DEADLINE) -> None:
        self.wait_for(lambda screen: text in screen, timeout, repr(text))

    def skip_until(self, marker: bytes, timeout: float = DEADLINE) -> None:
        """Read output until ``marker`` without drawing it on the screen model.

        For megabytes of output that pyte would take seconds to draw; the
        screen is stale afterwards.
        """
        deadline = time.monotonic() + timeout
        start = len(self.raw)
        while marker not in self.raw[max(start - len(marker), 0):]:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {marker!r} in the output")
            start = len(self.raw)
            try:
                self.raw += self.child.read_nonblocking(1 << 20, timeout=0.05)
            except pexpect.TIMEOUT:
                pass

    def wait_cooked(self, timeout: float = DEADLINE) -> None:
        """Wait until chatsh has given the terminal back its line discipline (no prompt
        running): only then does Ctrl-C reach it as SIGINT rather than as a key."""
        deadline = time.monotonic() + timeout
        while not termios.tcgetattr(self.child.child_fd)[3] & termios.ISIG:
            if time.monotonic() > deadline:
                raise AssertionError("the terminal stayed in raw mode")
            self.pump(0.01)

    def resize(self, rows: int, cols: int) -> None:
        """What a terminal made smaller or larger does: a new size for the pty (the
        kernel sends SIGWINCH), and a screen model of that size (pyte does not reflow
        its rows, as xterm does not)."""
        self.pump(0.01)
        self.child.setwinsize(rows, cols)
        self.screen.resize(rows, cols)

    def type(self, text: str) -> None:
        self.child.send(text)

    def enter(self, text: str = "") -> None:
        self.child.send(text + "\r")

    def focus(self, focused: bool) -> None:
        """What a terminal asked for focus reports (CSI ? 1004 h) sends when its window
        gets the focus (CSI I) or loses it (CSI O)."""
        self.child.send("\x1b[I" if focused else "\x1b[O")

    def exit_status(self, timeout: float = DEADLINE, draw: bool = True) -> int:
        """The exit status, reading the output meanwhile (without drawing it on the
        screen model unless ``draw``: megabytes take pyte seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            alive = self.child.isalive() and time.monotonic() < deadline
            try:
                data = self.child.read_nonblocking(1 << 20, timeout=0.05 if alive else 0.1)
            except pexpect.TIMEOUT:
                if alive:
                    continue
                break
            except pexpect.EOF:
                break
            self.raw += data
            if draw:
                self.stream.feed(data)
        self.child.wait() if not self.child.isalive() else self.child.terminate(force=True)
        return self.child.exitstatus if self.child.exitstatus is not None else -1

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)

    def input_line(self) -> str:
        """The last non-empty line: where the prompt and the typed text are."""
        return next(line for line in reversed(self.lines) if line)


def logged_in(make, port: int, *options: str, user: str = "alice", **kwargs) -> Terminal:
    """chatsh made by ``make`` (the term_factory fixture), logged in as ``user`` on the
    server at ``port``, its prompt drawn."""
    term = make("--port", str(port), "--user", user, *options, **kwargs)
    term.wait_text(f"Successfully logged in as {user}!")
    # a row of its own, not the last one: with answers to where the cursor is, the
    # toolbar is drawn on the bottom row, at once if the answer came before the prompt
    term.wait_for(lambda _: any(line.startswith(user) for line in term.lines),
                  what="the prompt")
    return term


class ScriptedServer:
    """A server the test drives by hand, to send anything at any moment."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(DEADLINE)
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.received = b""

    def accept(self, greet: bool = True) -> str:
        """Accept the client and answer its HELLO-FROM; returns the name."""
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(DEADLINE)
        line = self.read_line()
        name = line.removeprefix(b"HELLO-FROM ").decode()
        if greet:
            self.send(f"HELLO {name}\n".encode())
        return name

    def read_line(self) -> bytes:
        assert self.conn is not None
        while b"\n" not in self.received:
            data = self.conn.recv(1 << 20)
            if not data:
                raise EOFError("client closed")
            self.received += data
        line, _, self.received = self.received.partition(b"\n")
        return line

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        view = memoryview(data)
        while view:
            view = view[self.conn.send(view):]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()
