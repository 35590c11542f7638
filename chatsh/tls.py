"""TLS for the blocking clients (the shell, scripts, ``conform``).

:class:`TlsSocket` wraps a connected socket. OpenSSL forbids using one connection's TLS
state from two threads at once, and the client engine reads on a thread of its own
while the user's thread writes; so the state is an :class:`ssl.SSLObject` over memory
buffers, used under a lock, and only the raw socket's ``recv()`` and ``send()`` happen
outside it. Encrypted records leave through chatsh's own loop over ``send()``, never
``sendall()``.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
import threading

READ_SIZE = 256 * 1024
SEND_PIECE = 256 * 1024
"""Plain bytes encrypted by one ``send()``: a large write never sits whole in memory twice."""


SILENT_CLOSE = ("the server closed the connection after the handshake without a word (does "
                "it want a client certificate? --tls-cert FILE)")
"""What a close before any byte means over TLS: a server refusing a client's certificate
(or the lack of one) may end the connection without the alert that would say so."""


class TlsError(Exception):
    """TLS cannot be set up or the handshake failed; the message says why in one line."""


def _no_password() -> bytes:
    raise TlsError("the key is encrypted: give a key file without a passphrase")


def client_context(ca_file: str | None = None, cert_file: str | None = None,
                   key_file: str | None = None) -> ssl.SSLContext:
    """A context that checks the server's certificate and host name against the system's
    CAs, or ``ca_file``'s; with ``cert_file``, it shows that certificate when asked."""
    if ca_file is None:
        _system_cas_readable()
    try:
        regular_files(ca_file)
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot read the CA file {ca_file}: {reason(exc)}") from None
    if cert_file:
        load_certificate(context, cert_file, key_file)
    return context


def load_certificate(context: ssl.SSLContext, cert_file: str, key_file: str | None) -> None:
    """Load a certificate chain and its key, or say in one line why not."""
    try:
        regular_files(cert_file, key_file)
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except (OSError, ssl.SSLError, TlsError) as exc:
        raise TlsError(f"cannot load the certificate {cert_file}"
                       f"{f' and key {key_file}' if key_file else ''}: {reason(exc)}") from None


def regular_files(*paths: str | None) -> None:
    """OSError naming the first path that is there but no regular file: OpenSSL would wait
    on a FIFO until someone wrote to it (a path that is not there, loading names)."""
    for path in paths:
        try:
            regular = path is None or stat.S_ISREG(os.stat(path).st_mode)
        except OSError:
            continue
        if not regular:
            raise OSError(0, f"{path} is not a regular file")


def _system_cas_readable() -> None:
    """TlsError when ``$SSL_CERT_FILE``, where OpenSSL reads the system's CAs when it is
    set, names something that is no regular file."""
    variable = ssl.get_default_verify_paths().openssl_cafile_env
    try:
        regular_files(os.environ.get(variable))
    except OSError as exc:
        raise TlsError(f"cannot read the system's CAs from ${variable}: {reason(exc)}") from None


def reason(exc: BaseException) -> str:
    """One line on why a TLS operation failed, as OpenSSL or the system put it."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class TlsSocket:
    """A TLS connection over a connected socket, with the methods of a socket that the
    clients use. One thread may read while another writes."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext,
                 server_hostname: str | None) -> None:
        self.raw = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing,
                                     server_hostname=server_hostname)
        self._state = threading.Lock()
        """Held while the TLS state is used, never while waiting on the network."""
        self._wire = threading.Lock()
        """Held by whoever sends records, so that records leave in the order made."""
        self.failure = ""
        """Why the connection failed at the TLS layer, once it has (an alert, say)."""
        self._heard = False
        """Whether a byte of the server's own came through the connection."""

    def handshake(self) -> None:
        """Shake hands within the socket's timeout; TlsError says why it failed."""
        try:
            while True:
                try:
                    with self._state:
                        self._tls.do_handshake()
                    self._flush()
                    return
                except ssl.SSLWantReadError:
                    self._flush()
                    if not self._fill():
                        raise TlsError("the server closed the connection during the "
                                       "handshake (is it a TLS port?)") from None
        except TimeoutError:
            raise TlsError("no answer to the handshake in time (is it a TLS port?)") from None
        except (OSError, ssl.SSLError) as exc:
            plain = isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER"
            raise TlsError(reason(exc) + (" (is it a TLS port?)" if plain else "")) from None

    @property
    def version(self) -> str | None:
        return self._tls.version()

    def send(self, data: bytes | memoryview) -> int:
        """Encrypt up to :data:`SEND_PIECE` bytes of ``data`` and send the records; how
        many bytes of ``data`` were taken."""
        with self._wire:
            with self._state:
                taken = self._tls.write(memoryview(data)[:SEND_PIECE])
            self._flush_held()
        return taken

    def recv(self, size: int) -> bytes:
        """Up to ``size`` plain bytes; b"" once the peer closed (with or without saying
        so, or after a TLS failure, which :attr:`failure` then names)."""
        while True:
            with self._state:
                try:
                    data: bytes | None = self._tls.read(size)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = b""
                except ssl.SSLError as exc:
                    self.failure = reason(exc)
                    data = b""
                replies = self._outgoing.pending
            if data:
                self._heard = True
            elif data is not None and not self._heard and not self.failure:
                self.failure = SILENT_CLOSE
            if replies and self._wire.acquire(blocking=False):
                try:  # (a writer holding the wire sends them after its own records)
                    self._flush_held()
                finally:
                    self._wire.release()
            if data is not None:
                return data
            self._fill()

    def _fill(self) -> bool:
        """Read from the network into the TLS state; False at the end of the stream."""
        chunk = self.raw.recv(READ_SIZE)
        with self._state:
            if chunk:
                self._incoming.write(chunk)
            else:
                self._incoming.write_eof()
        return bool(chunk)

    def _flush(self) -> None:
        with self._wire:
            self._flush_held()

    def _flush_held(self) -> None:
        """Send every record made so far, in order (the wire lock is held)."""
        while True:
            with self._state:
                records = self._outgoing.read()
            if not records:
                return
            view = memoryview(records)
            while view:
                view = view[self.raw.send(view):]

    def shutdown(self, how: int) -> None:
        """Stop writing (saying so to the peer with a close_notify, unless a write is
        under way on another thread) and, with SHUT_RDWR, reading too."""
        if self._wire.acquire(blocking=False):
            try:
                with self._state:
                    try:
                        self._tls.unwrap()
                    except (ssl.SSLWantReadError, ssl.SSLError):
                        pass  # sent; the peer's own close_notify is not waited for
                self._flush_held()
            except OSError:
                pass
            finally:
                self._wire.release()
        self.raw.shutdown(how)

    def fileno(self) -> int:
        """The raw socket's descriptor, for select() (which sees records, not plain bytes)."""
        return self.raw.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self.raw.settimeout(timeout)

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        self.raw.setsockopt(level, option, value)

    def close(self) -> None:
        self.raw.close()
