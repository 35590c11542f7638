"""The dates a server certificate is valid between, read from its PEM file, and the
warning when now is not between them (clients that check certificates refuse it).

The standard library has no public way to read a certificate, so the few fields needed
are read from its DER encoding: Certificate, tbsCertificate, then past the version,
serial number, signature algorithm and issuer, the validity's two times.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import re
import stat

PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)
SEQUENCE, EXPLICIT_VERSION, UTC_TIME, GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18
MAX_READ = 1024 * 1024
"""Bytes of a certificate file read for its dates: a chain is a few KiB."""


def _element(der: bytes, at: int) -> tuple[int, int, int]:
    """The DER element at ``at``: its tag and where its content starts and ends."""
    tag, length = der[at], der[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4:
            raise ValueError("not a DER length")
        length = int.from_bytes(der[at:at + count], "big")
        at += count
    if at + length > len(der):
        raise ValueError("an element past the end")
    return tag, at, at + length


def _time(tag: int, text: bytes) -> datetime.datetime:
    """A UTCTime (two-digit year, 1950-2049) or GeneralizedTime, in UTC."""
    digits = text.decode("ascii").removesuffix("Z")
    if tag == UTC_TIME:
        year = int(digits[:2])
        digits = f"{1900 + year if year >= 50 else 2000 + year}{digits[2:]}"
    elif tag != GENERALIZED_TIME:
        raise ValueError("not a time")
    return datetime.datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)


def certificate_dates(pem: bytes) -> tuple[datetime.datetime, datetime.datetime] | None:
    """The first certificate's notBefore and notAfter; None if there is none to read."""
    block = PEM_BLOCK.search(pem)
    try:
        if block is None:
            return None
        der = base64.b64decode(block[1])
        tag, start, _ = _element(der, 0)
        tag, at, _ = _element(der, start)  # tbsCertificate
        if tag != SEQUENCE:
            return None
        tag, _, end = _element(der, at)
        if tag == EXPLICIT_VERSION:
            at = end
        for _field in ("serial number", "signature algorithm", "issuer"):
            at = _element(der, at)[2]
        tag, at, _ = _element(der, at)  # validity
        first, start, end = _element(der, at)
        last, after, stop = _element(der, end)
        if tag != SEQUENCE:
            return None
        return _time(first, der[start:end]), _time(last, der[after:stop])
    except (ValueError, IndexError, binascii.Error):
        return None


def _read(path: str) -> bytes:
    """The start of a regular file, without waiting on one swapped for a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return os.read(fd, MAX_READ) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)


def out_of_date(cert_file: str, now: datetime.datetime | None = None) -> str | None:
    """Why the certificate in ``cert_file`` is not valid ``now``, in words; None when it
    is, or when its dates cannot be read."""
    try:
        dates = certificate_dates(_read(cert_file))
    except OSError:
        return None
    if dates is None:
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    not_before, not_after = dates
    if now > not_after:
        return f"expired on {not_after:%Y-%m-%d %H:%M} UTC"
    if now < not_before:
        return f"is not valid before {not_before:%Y-%m-%d %H:%M} UTC"
    return None
