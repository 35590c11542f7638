"""Make docs/session.png: a real chatsh session, drawn by a real terminal.

Runs ``chatsh serve`` and the shell in a tmux of its own, has two other users write
to it (a long message among them, folded under its sender), asks ``!last bob 3``,
captures the pane with its colours (``tmux capture-pane -p -e``), turns that into
HTML and has headless Chromium take the picture. The shell's home is a temporary
folder, so its message store starts empty and nothing of yours is read or kept.
Needs tmux and chromium (Debian: ``apt-get install tmux chromium``) and chatsh
installed in this Python's environment:

    python docs/screenshot.py
"""

from __future__ import annotations

import html
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "session.png"
COLUMNS, ROWS = 84, 22
SOCKET = "chatsh-screenshot"
"""The tmux server's own socket name (``tmux -L``): no other tmux session is touched."""
PALETTE = ["#2e3436", "#cc0000", "#4e9a06", "#c4a000", "#3465a4", "#75507b", "#06989a",
           "#d3d7cf", "#555753", "#ef2929", "#8ae234", "#fce94f", "#729fcf", "#ad7fa8",
           "#34e2e2", "#eeeeec"]
FOREGROUND, BACKGROUND = "#eeeeec", "#1e1e1e"
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def chatsh() -> str:
    found = Path(sys.executable).parent / "chatsh"
    return str(found) if found.exists() else shutil.which("chatsh") or "chatsh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Peer:
    """Another user, on a bare socket."""

    def __init__(self, port: int, name: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(f"HELLO-FROM {name}\n".encode())
        self.sock.recv(100)

    def say(self, to: str, text: str) -> None:
        self.sock.sendall(f"SEND {to} {text}\n".encode())


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, "-f", "/dev/null", *args], check=True,
                          capture_output=True, text=True).stdout


STEPS = [("bob", "morning! lunch at noon?"), ("keys", "@bob sure, see you at noon"),
         ("carol", "alice, the build is green and the release notes are up for review: "
                   "could you read them before we tag 2.4 this afternoon?"),
         ("keys", "!to carol"), ("keys", "reading them now"),
         ("bob", "bring the slides?"), ("bob", "and the demo laptop"),
         ("keys", "!last bob 3"), ("type", "and then the rel")]
"""What happens, in order: a peer's message, a line typed and Enter, or typing alone."""


def to_html(captured: str) -> str:
    """The pane's text with its SGR colours as HTML spans (other escapes dropped)."""
    out: list[str] = []
    fg, bg, bold, reverse = None, None, False, False
    for line in captured.splitlines():
        position = 0
        parts: list[str] = []
        for match in SGR.finditer(line):
            parts.append(_span(line[position:match.start()], fg, bg, bold, reverse))
            codes = [int(code) for code in match.group(1).split(";") if code] or [0]
            for code in codes:
                if code == 0:
                    fg, bg, bold, reverse = None, None, False, False
                elif code == 1:
                    bold = True
                elif code == 22:
                    bold = False
                elif code == 7:
                    reverse = True
                elif code == 27:
                    reverse = False
                elif 30 <= code <= 37 or 90 <= code <= 97:
                    fg = code - 30 if code < 90 else code - 82
                elif code == 39:
                    fg = None
                elif 40 <= code <= 47 or 100 <= code <= 107:
                    bg = code - 40 if code < 100 else code - 92
                elif code == 49:
                    bg = None
            position = match.end()
        parts.append(_span(line[position:], fg, bg, bold, reverse))
        out.append("".join(parts))
    body = "\n".join(out)
    return (f"<html><body style='margin:0;background:{BACKGROUND}'><pre style='margin:12px;"
            f"font:15px/1.3 DejaVu Sans Mono,monospace;color:{FOREGROUND}'>{body}</pre>"
            "</body></html>")


def _span(text: str, fg: int | None, bg: int | None, bold: bool, reverse: bool) -> str:
    if not text:
        return ""
    ink = PALETTE[fg + (8 if bold and fg < 8 else 0)] if fg is not None else FOREGROUND
    paper = PALETTE[bg] if bg is not None else None
    if reverse:
        ink, paper = paper or BACKGROUND, ink
    style = f"color:{ink};" + (f"background:{paper};" if paper else "") + (
        "font-weight:bold;" if bold else "")
    return f"<span style='{style}'>{html.escape(text)}</span>"


def main() -> int:
    port = free_port()
    server = subprocess.Popen([chatsh(), "serve", "--port", str(port)],
                              stderr=subprocess.DEVNULL)
    home = tempfile.mkdtemp(prefix="chatsh-screenshot-")
    try:
        time.sleep(1)
        bob, carol = Peer(port, "bob"), Peer(port, "carol")
        tmux("new-session", "-d", "-x", str(COLUMNS), "-y", str(ROWS),
             f"env HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config "
             f"XDG_STATE_HOME={home}/state TERM=xterm-256color "
             f"{chatsh()} --port {port} --user alice --no-history")
        time.sleep(1.5)
        for kind, text in STEPS:
            if kind == "bob":
                bob.say("alice", text)
            elif kind == "carol":
                carol.say("alice", text)
            else:
                tmux("send-keys", "-l", text)
                if kind == "keys":
                    tmux("send-keys", "Enter")
            time.sleep(0.6)
        time.sleep(1.5)
        captured = tmux("capture-pane", "-p", "-e")
        with tempfile.TemporaryDirectory() as folder:
            page = Path(folder) / "session.html"
            page.write_text(to_html(captured), encoding="utf-8")
            subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-background-networking", "--no-first-run",
                            f"--user-data-dir={folder}/profile", "--hide-scrollbars",
                            f"--screenshot={OUT}", "--window-size=800,460",
                            page.as_uri()], check=True, capture_output=True, timeout=120)
        print(f"wrote {OUT}")
        return 0
    finally:
        subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True)
        server.terminate()
        server.wait(10)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
