"""Certificates made for a test with trustme: a private CA, a server's certificate and
a client's, written as PEM files in the test's folder. Nothing is checked in."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class Certificates:
    """The files of one private CA: its certificate, and a server's chain and key."""

    folder: Path
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path

    def client(self, name: str) -> tuple[Path, Path]:
        """A client certificate for ``name`` signed by this CA: its chain and key files."""
        issued = self.ca.issue_cert(f"{name}@example.org")
        chain, key = self.folder / f"{name}-chain.pem", self.folder / f"{name}-key.pem"
        _write_chain(issued, chain)
        issued.private_key_pem.write_to_path(str(key))
        return chain, key

    def client_context(self) -> ssl.SSLContext:
        """A Python client's context that trusts this CA."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def _write_chain(issued: trustme.LeafCert, path: Path) -> None:
    path.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))


def make_certificates(folder: Path, *names: str) -> Certificates:
    """A new CA and a server certificate for ``names`` (default: localhost) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert(*(names or ("localhost",)))
    certificates = Certificates(folder, ca, folder / "ca.pem", folder / "server-chain.pem",
                                folder / "server-key.pem")
    ca.cert_pem.write_to_path(str(certificates.ca_file))
    _write_chain(issued, certificates.cert_file)
    issued.private_key_pem.write_to_path(str(certificates.key_file))
    return certificates
