"""A small, separate server for the conformance tests, with one rule broken on demand.

With no fault it follows the protocol (the tests check that every case passes);
each fault breaks exactly one rule, so that one case must fail. The ``older-version``
fault speaks the protocol's older version: ``WHO``/``WHO-OK`` instead of
``LIST``/``LIST-OK`` (``LIST`` is an unknown header) and ``UNKNOWN`` for
``BAD-DEST-USER``. Quirks are what real
servers do that the protocol allows: with any of them, no required case may fail.
"""

from __future__ import annotations

import asyncio
import threading
import unicodedata

BAD_NAME_CHARS = "!@#$%^&*, "
INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Cn", "Zs", "Zl", "Zp"}


def looks(name: str) -> str:
    """What a name looks like, enough for the look-alike case."""
    return unicodedata.normalize("NFKC", name).casefold().replace("\u0430", "a")


HOSTILE = (b"\x1b]0;pwned\x07\x1b[2J\x1b[31m" + "\u202e\u2028\u200b\ufffe\uffff".encode()
           + b"\xed\xa0\x80\xed\xbf\xbf\x80\x9b\xff]]>&<\"' " + bytes(range(0x0a))
           + bytes(range(0x0b, 0x20)) + b"\x7f" + "".join(map(chr, range(0x80, 0xa0))).encode())
"""What the ``hostile`` fault sends in place of every reply: every C0 and C1 control
(newline aside), invalid UTF-8 (raw C1 bytes, encoded lone surrogates), non-characters,
bidi and line-separator characters, XML's special strings and terminal commands (title,
clear screen, colour)."""

QUIRKS = ("no-policies", "no-echobot", "delivery-first", "open-after-refusal",
          "bare-send-hdr")


class BrokenServer:
    def __init__(self, fault: str | None = None, max_clients: int = 1000,
                 quirks: tuple[str, ...] = ()) -> None:
        self.fault = fault
        self.quirks = set(quirks)
        self.max_clients = max_clients
        self.users: dict[str, asyncio.StreamWriter] = {}
        self.routed = 0
        self.skipped: set[asyncio.StreamWriter] = set()
        """Connections whose first SEND was left unanswered (``skips-first-send``)."""
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 26))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    def stop(self) -> None:
        if self.thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(self.loop.stop)
            except RuntimeError:  # the loop closed by itself meanwhile
                pass
        self.thread.join(5)

    def _lines(self, buffer: bytes, data: bytes) -> tuple[list[bytes], bytes]:
        if self.fault == "chunk-is-line":
            return [data.rstrip(b"\n")], b""
        if self.fault == "decode-per-chunk":
            data = data.decode("utf-8", "replace").encode()
        *lines, rest = (buffer + data).split(b"\n")
        if self.fault == "first-line-only":
            lines = lines[:1]
        return lines, rest

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.fault == "hostile":
            _make_hostile(writer)
        name: str | None = None
        buffer = b""
        clean = False
        try:
            while data := await reader.read(1 << 20):
                if self.fault == "stall-large" and len(buffer) > 1 << 20:
                    await asyncio.sleep(3600)  # stops reading in the middle of a line
                lines, buffer = self._lines(buffer, data)
                for line in lines:
                    if name is None:
                        name = self._login(line.decode("utf-8", "replace"), writer)
                        if name is None and not self._stays_open(line):
                            await writer.drain()
                            writer.close()
                            return
                    elif self.fault == "dies-on-send" and line.startswith(b"SEND "):
                        await asyncio.Event().wait()  # its thread died: open, never answers
                    elif (self.fault == "skips-first-send" and line.startswith(b"SEND ")
                          and writer not in self.skipped):
                        self.skipped.add(writer)  # lost, unanswered; later lines answered
                    elif not self._request(name, line, writer):
                        writer.close()
                        return
            clean = True
        except (ConnectionError, asyncio.CancelledError):
            if self.fault == "dies-on-reset":
                self.loop.stop()
        finally:
            if self.fault == "dies-after-warning" and name is None and buffer == b"" and clean:
                self.loop.stop()  # the connection left open after BAD-RQST-HDR ends
            forget = {"never-forget": False, "forget-on-clean-only": clean,
                      "forget-on-reset-only": not clean}.get(self.fault or "", True)
            if name is not None and forget and self.users.get(name) is writer:
                del self.users[name]
            writer.close()

    def _stays_open(self, refused: bytes) -> bool:
        """After a refused login: the reference server's way keeps the connection."""
        if refused.startswith(b"HELLO-FROM"):
            return "open-after-refusal" in self.quirks or self.fault in (
                "deaf-after-refusal", "hdr-after-refusal")
        return self.fault in ("open-after-bad-hdr", "dies-after-warning")

    def _login(self, line: str, writer: asyncio.StreamWriter) -> str | None:
        if self.fault == "deaf-after-refusal" and getattr(writer, "refused", False):
            return None
        if self.fault == "hdr-after-refusal" and getattr(writer, "refused", False):
            writer.write(b"BAD-RQST-HDR\n")  # a published server's answer to a retry
            return None
        strict = "no-policies" not in self.quirks
        header, _, name = line.partition(" ")
        if header != "HELLO-FROM":
            writer.write(b"BAD-RQST-BODY\n" if self.fault == "hdr-as-body" else b"BAD-RQST-HDR\n")
            return None
        writer.refused = True  # type: ignore[attr-defined]
        allowed = self.fault[6:] if self.fault and self.fault.startswith("allow:") else ""
        if any(c in BAD_NAME_CHARS and c not in allowed for c in name) or (
                not name and self.fault != "allow-empty") or (
                self.fault != "allow-invisible" and strict
                and any(unicodedata.category(c) in INVISIBLE and c not in allowed
                        for c in name)) or any(c < " " for c in name) or (
                len(name) > 64 and self.fault != "no-length-cap" and strict):
            writer.write(b"BAD-RQST-BODY\n")
            return None
        exact = self.fault == "exact-names-only" or not strict
        taken = {*self.users, "echobot"} if exact else {
            looks(user) for user in (*self.users, "echobot")}
        seen = name if exact else looks(name)
        if seen in taken and self.fault != "dup-names":
            writer.write(b"IN-USE" if self.fault == "cut-refusal" else b"IN-USE\n")
            return None
        if len(self.users) >= self.max_clients and self.fault != "no-busy":
            writer.write(b"BUSY\n")
            return None
        self.users[name] = writer
        writer.refused = False  # type: ignore[attr-defined]
        shown = name + "x" if self.fault == "hello-wrong-name" else name
        writer.write(f"HELLO {shown}\n".encode())
        return name

    def _request(self, name: str, line: bytes, writer: asyncio.StreamWriter) -> bool:
        header, _, rest = line.partition(b" ")
        if header == b"HELLO-FROM" and self.fault == "hello-relogin":
            writer.write(b"HELLO " + rest + b"\n")
            return True
        older = self.fault == "older-version"
        if header == (b"WHO" if older else b"LIST"):
            bot = self.fault == "list-no-echobot" or "no-echobot" in self.quirks
            names = [*([] if bot else ["echobot"]), *(
                user for user in self.users if user != name or self.fault != "list-not-self")]
            separator = ", " if self.fault == "list-spaces" else ","
            reply = "WHO-OK" if older else "LIST-OK"
            writer.write(f"{reply} {separator.join(names)}\n".encode())
            return True
        if header != b"SEND":
            if self.fault == "unknown-closes":
                return False
            writer.write(b"BAD-RQST-HDR\n")
            return self.fault != "closes-after-bad-hdr"
        cap = {"cap-512k": 512 << 10, "cap-8m": 8 << 20}.get(self.fault or "", 1 << 30)
        dest, space, body = rest.partition(b" ")
        if not space or not body or len(line) > cap:
            as_header = self.fault == "malformed-as-hdr" or (
                not rest and "bare-send-hdr" in self.quirks)
            writer.write(b"BAD-RQST-HDR\n" if as_header else b"BAD-RQST-BODY\n")
            return True
        if self.fault == "squash-spaces":
            body = b" ".join(body.split())
        self._send(name, dest.decode("utf-8", "replace"), body, writer)
        return True

    def _send(self, name: str, dest: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        ok = b"" if self.fault == "no-send-ok" else b"SEND-OK\n"
        if dest == "echobot" and "no-echobot" not in self.quirks:
            echo = b"DELIVERY echobot " + body + b"\n"
            writer.write(echo + ok if self.fault == "echo-before-ok" else ok + echo)
            return
        recipient = self.users.get(dest)
        if recipient is None:
            writer.write({"ok-unknown-dest": b"SEND-OK\n", "older-version": b"UNKNOWN\n"}.get(
                self.fault or "", b"BAD-DEST-USER\n"))
            return
        self.routed += 1
        if self.fault == "misroute-tenth" and self.routed % 10 == 0:
            recipient = writer
        delivery = b"" if recipient is writer and self.fault == "no-self-delivery" else (
            f"DELIVERY {name} ".encode() + body + b"\n")
        if recipient is writer and "delivery-first" in self.quirks:
            writer.write(delivery + ok)
            return
        writer.write(ok)
        recipient.write(delivery)


def _make_hostile(writer: asyncio.StreamWriter) -> None:
    """Replace what ``writer`` sends by :data:`HOSTILE`: a login is still accepted (so
    that every case gets as far as it can), LIST-OK names two hostile users, and every
    other line is hostile bytes."""
    write = writer.write

    def hostile(data: bytes) -> None:
        for line in data.split(b"\n")[:-1]:
            if line.startswith(b"LIST-OK"):
                line = b"LIST-OK " + HOSTILE + b"," + HOSTILE
            elif not line.startswith(b"HELLO "):
                line = HOSTILE
            write(line + b"\n")
    writer.write = hostile  # type: ignore[method-assign]
