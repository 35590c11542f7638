"""The operator's TLS files before anything is served: a path that is no regular file is
refused at once, in one line, by the server and by every client; a certificate out of
its dates is a warning at start and on SIGHUP."""

from __future__ import annotations

import datetime
import json
import os
import signal
import ssl
import subprocess
from pathlib import Path

import pytest
from certificates import Certificates, make_certificates
from conftest import CHATSH, RawClient, chatsh_env
from served import Served

from chatsh.serving.validity import certificate_dates


@pytest.fixture
def certs(tmp_path) -> Certificates:
    return make_certificates(tmp_path / "pki")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """chatsh with ``args``; a start that waits for a FIFO's writer fails the test in 10 s."""
    return subprocess.run([CHATSH, *args], capture_output=True, text=True, timeout=10,
                          env=chatsh_env(**env), stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("role", ["--tls-cert", "--tls-key", "--tls-client-ca"])
def test_a_fifo_for_a_server_file_is_refused_at_start_in_one_line(certs, tmp_path, role):
    """A FIFO held ``chatsh serve`` before it listened, silent, until someone wrote to it
    (SIGHUP already refused one)."""
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    files = {"--tls-cert": str(certs.cert_file), "--tls-key": str(certs.key_file),
             "--tls-client-ca": str(certs.ca_file), role: str(fifo)}
    result = run("serve", "--port", "0", *(item for pair in files.items() for item in pair))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"{fifo} is not a regular file" in line


@pytest.mark.parametrize("args", [("--tls-ca", "{fifo}"),
                                  ("--tls-cert", "{fifo}"),
                                  ("--tls-cert", "{cert}", "--tls-key", "{fifo}")])
@pytest.mark.parametrize("command", [("-c", "!who"), ("conform", "-k", "handshake")])
def test_a_fifo_for_a_client_file_is_refused_in_one_line(certs, tmp_path, args, command):
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    named = [arg.format(fifo=fifo, cert=certs.cert_file) for arg in args]
    if command[0] == "conform":
        result = run("conform", "--port", "1", *named, *command[1:])
    else:
        result = run("--port", "1", *named, *command)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"{fifo} is not a regular file" in line


def test_a_fifo_named_by_ssl_cert_file_is_refused_in_one_line(tmp_path):
    """The system's CAs come from $SSL_CERT_FILE when it is set: the environment as well
    as the flag."""
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    result = run("--port", "1", "--tls", "-c", "!who", SSL_CERT_FILE=str(fifo))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"{fifo} is not a regular file" in line and "SSL_CERT_FILE" in line


HOUR = datetime.timedelta(hours=1)


def issued(folder: Path, **dates: datetime.datetime) -> Certificates:
    """A CA and a server certificate for localhost valid between the ``dates`` given."""
    certificates = make_certificates(folder)
    leaf = certificates.ca.issue_cert("localhost", **dates)
    certificates.cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(certificates.key_file))
    return certificates


@pytest.mark.parametrize(("not_before", "not_after"), [
    (datetime.datetime(2020, 1, 2, 3, 4, 5), datetime.datetime(2049, 12, 31, 23, 59, 59)),
    (datetime.datetime(1999, 6, 1), datetime.datetime(2051, 7, 8, 9, 10, 11)),  # 4-digit years
    (datetime.datetime(1950, 1, 1), datetime.datetime(2049, 12, 31)),  # UTCTime's two ends
])
def test_a_certificates_dates_are_read_from_its_pem(tmp_path, not_before, not_after):
    certificates = issued(tmp_path, not_before=not_before, not_after=not_after)
    utc = datetime.UTC
    assert certificate_dates(certificates.cert_file.read_bytes()) == (
        not_before.replace(tzinfo=utc), not_after.replace(tzinfo=utc))


@pytest.mark.parametrize("pem", [b"", b"not a certificate\n",
                                 b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                                 b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"])
def test_what_is_no_certificate_has_no_dates(pem):
    assert certificate_dates(pem) is None


def test_an_expired_certificate_is_one_warning_at_start_and_the_server_serves(tmp_path):
    """Clients that check certificates refuse an expired one: the operator hears it from
    the server's first lines, not from every user."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    expired = issued(tmp_path, not_before=now - 48 * HOUR, not_after=now - 24 * HOUR)
    served = Served("--tls-cert", str(expired.cert_file), "--tls-key", str(expired.key_file),
                    "--log-format", "json")
    try:
        [warning] = [json.loads(line) for line in served.log if "expired" in line]
        assert warning["message"].startswith(
            f"the TLS certificate {expired.cert_file} expired on ")
        assert warning["level"] == "warning" and warning["event"] == "tls_out_of_date"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a client that does not check: still served
        client = RawClient(served.port)
        client.sock = context.wrap_socket(client.sock)
        assert client.login("ann") == b"HELLO ann"
    finally:
        assert served.stop() == 0


def test_a_certificate_not_valid_yet_is_a_warning_on_sighup(tmp_path):
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    certificates = issued(tmp_path / "now", not_before=now - HOUR, not_after=now + 24 * HOUR)
    served = Served("--tls-cert", str(certificates.cert_file), "--tls-key",
                    str(certificates.key_file))
    try:
        assert not any("valid" in line or "expired" in line for line in served.log)
        later = issued(tmp_path / "later", not_before=now + 24 * HOUR,
                       not_after=now + 48 * HOUR)
        certificates.cert_file.write_bytes(later.cert_file.read_bytes())
        certificates.key_file.write_bytes(later.key_file.read_bytes())
        served.signal(signal.SIGHUP)
        served.wait_logged(f"reloaded the TLS certificate {certificates.cert_file}")
        [line] = [line for line in served.log if "reloaded" in line]
        assert "which is not valid before " in line and "will refuse it" in line
    finally:
        assert served.stop() == 0


@pytest.mark.parametrize("url", ["rediss://127.0.0.1:1/0?ssl_ca_certs={fifo}",
                                 "rediss+cluster://127.0.0.1:1?ssl_certfile={cert}&"
                                 "ssl_keyfile={fifo}",
                                 "rediss+sentinel://127.0.0.1:1/chat?ssl_certfile={fifo}"])
def test_a_fifo_for_the_engines_tls_file_is_refused_in_one_line(certs, tmp_path, url):
    """The cluster engine's TLS files come in its URL: a FIFO there held the node's start
    (and would hold its event loop at every reconnection)."""
    pytest.importorskip("redis")
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    result = run("serve", "--port", "0", "--cluster",
                 url.format(fifo=fifo, cert=certs.cert_file))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"{fifo} is not a regular file" in line
