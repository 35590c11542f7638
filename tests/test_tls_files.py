"""The operator's TLS files before anything is served: a path that is no regular file is
refused at once, in one line, by the server and by every client."""

from __future__ import annotations

import os
import subprocess

import pytest
from certificates import Certificates, make_certificates
from conftest import CHATSH, chatsh_env


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
