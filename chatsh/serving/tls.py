"""TLS for ``chatsh serve``: the context made from the operator's files (again on
SIGHUP, without dropping anyone), and each connection's handshake."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, Generic, TypeVar, cast

from ..sanitize import sanitize
from ..serverlog import LogLine
from ..tls import TlsError, load_certificate, reason, regular_files
from .validity import out_of_date

REFUSED = "clients that check certificates will refuse it"


class ServerTls:
    """The certificate, its key and (for mutual TLS) the CAs a client's certificate must
    be signed by. :attr:`context` is what new connections shake hands with."""

    def __init__(self, cert_file: str, key_file: str | None = None,
                 client_ca: str | None = None) -> None:
        """TlsError, in one line, for a file that cannot be used."""
        self.cert_file, self.key_file, self.client_ca = cert_file, key_file, client_ca
        self.context = self._load()
        self.out_of_date = out_of_date(cert_file)
        """Why the certificate in use is not valid now (expired, or not yet), if it is not."""

    def warning(self) -> LogLine | None:
        """The line to log at start when the certificate is out of its dates."""
        if self.out_of_date is None:
            return None
        return LogLine(f"the TLS certificate {sanitize(self.cert_file)} {self.out_of_date}: "
                       f"{REFUSED}", "tls_out_of_date", level="warning")

    def _load(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        load_certificate(context, self.cert_file, self.key_file)
        if self.client_ca:
            try:
                regular_files(self.client_ca)
                context.load_verify_locations(self.client_ca)
            except (OSError, ssl.SSLError) as exc:
                raise TlsError(f"cannot read the client CA file {self.client_ca}: "
                               f"{reason(exc)}") from None
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def reload(self) -> LogLine:
        """Read the files again for the connections to come (those open keep theirs);
        the line to log, which says when the old context stays because a file fails. Only
        regular files are read (:func:`~chatsh.tls.regular_files`): a FIFO would hold the
        event loop until written."""
        try:
            self.context = self._load()
        except TlsError as exc:
            return LogLine(f"kept the TLS certificate in use: {sanitize(str(exc))}",
                           "tls_reload_failed", level="warning")
        self.out_of_date = out_of_date(self.cert_file)
        reloaded = f"reloaded the TLS certificate {sanitize(self.cert_file)}"
        if self.out_of_date is None:
            return LogLine(reloaded, "tls_reloaded")
        return LogLine(f"{reloaded}, which {self.out_of_date}: {REFUSED}", "tls_reloaded",
                       level="warning")


CLIENT_CERTIFICATE_FAILURES = ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_VERIFY_FAILED")
NOT_TLS = ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL")


def shake_hands(transport: asyncio.Transport, protocol: asyncio.Protocol,
                context: ssl.SSLContext) -> Awaitable[asyncio.Transport | tuple[str, str]]:
    """Turn a connection just made into a TLS one: awaited, its new transport, else the
    kind of failure (``client_certificate`` or ``tls_handshake``) and why, in words.

    Called from the protocol's ``connection_made``: the handshake takes the connection
    over before this call returns, so that what the loop reads next (the client's hello)
    goes to the TLS layer. uvloop starts reading a connection right after
    ``connection_made`` even when it paused reading; a task would start too late."""
    return _outcome(begun(asyncio.get_running_loop().start_tls(
        transport, protocol, context, server_side=True)))


async def _outcome(handshake: Awaitable[asyncio.Transport | None]
                   ) -> asyncio.Transport | tuple[str, str]:
    try:
        secured = await handshake
    except ssl.SSLError as exc:
        if exc.reason in CLIENT_CERTIFICATE_FAILURES:
            return "client_certificate", f"client certificate: {reason(exc)}"
        if exc.reason in NOT_TLS:
            return "tls_handshake", "the client does not speak TLS"
        return "tls_handshake", reason(exc)
    except ConnectionError:
        return "tls_handshake", "the client went away"
    if secured is None or secured.is_closing():  # (uvloop: closed before any byte)
        return "tls_handshake", "the client went away"
    return secured


T = TypeVar("T")


def begun(coroutine: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """Run ``coroutine`` at once up to its first wait; the rest when awaited (in a
    task)."""
    try:
        first = coroutine.send(None)
    except StopIteration as done:
        return _value(done.value)
    except Exception as exc:  # (raised when awaited, as if it had run in the task)
        return _raise(exc)
    return _Rest(coroutine, first)


async def _value(value: T) -> T:
    return value


async def _raise(exc: Exception) -> Any:
    raise exc


class _Rest(Generic[T]):
    """A coroutine already run up to its first wait, driven on by the awaiting task."""

    def __init__(self, coroutine: Coroutine[Any, Any, T], waiting: Any) -> None:
        self.coroutine = coroutine
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, T]:
        waiting = self.waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:  # (a cancellation goes on into the coroutine)
                try:
                    waiting = self.coroutine.throw(exc)
                except StopIteration as done:
                    return cast(T, done.value)
            else:
                try:
                    waiting = self.coroutine.send(sent)
                except StopIteration as done:
                    return cast(T, done.value)
