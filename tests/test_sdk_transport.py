"""The SDK's transports against a real server: TLS verified by default, proxies from the
environment, and the same errors for a server that cannot be reached or does not answer.

The sync client sends with urllib3 and the async one with httpx (memstore/http_transport.py);
each behaviour here is checked on both. TLS is a loopback proxy that terminates TLS with a
certificate made for the test and forwards the bytes to a real `memstore serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from memstore import APIConnectionError, AsyncMemstore, Memstore

LOOPBACK = "127.0.0.1"


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class Relay:
    """Accepts loopback connections (TLS ones with ``context``) and pipes each to
    ``upstream``; counts connections and, as an HTTP proxy, rewrites absolute targets."""

    def __init__(self, upstream: int, context: ssl.SSLContext | None = None) -> None:
        self.upstream, self.context = upstream, context
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.context is not None:
                client = self.context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()  # the client refused the certificate
            return
        upstream = socket.create_connection((LOOPBACK, self.upstream))
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def close(self) -> None:
        self.listener.close()


class ForwardProxy(Relay):
    """A plain-HTTP forward proxy for one upstream: absolute-form targets become origin-form
    (``GET http://host:port/path`` -> ``GET /path``), one request per connection."""

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and (chunk := client.recv(65536)):
            head += chunk
        line, rest = head.split(b"\r\n", 1)
        method, target, version = line.split(b" ")
        path = b"/" + target.split(b"/", 3)[3]  # drop "http://host:port"
        headers, body = rest.split(b"\r\n\r\n", 1)
        kept = [h for h in headers.split(b"\r\n") if not h.lower().startswith(b"connection:")]
        length = next(
            (int(h.split(b":")[1]) for h in kept if h.lower().startswith(b"content-length:")), 0
        )
        while len(body) < length and (chunk := client.recv(65536)):
            body += chunk
        request = b" ".join([method, path, version]) + b"\r\n" + b"\r\n".join(kept)
        upstream = socket.create_connection((LOOPBACK, self.upstream))
        upstream.sendall(request + b"\r\nConnection: close\r\n\r\n" + body)
        _pump(upstream, client)


def _certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "memstore test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def key(server) -> str:
    return server.key(f"transport-{uuid.uuid4().hex[:12]}").key


@pytest.fixture
def tls(server, tmp_path) -> Iterator[tuple[str, Path]]:
    """An https URL in front of the server, and the CA file that certifies it."""
    cert, private = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, private)
    relay = Relay(server.port, context)
    yield f"https://{LOOPBACK}:{relay.port}", cert
    relay.close()


def _round_trip(client: str, key: str, url: str, **options: Any) -> list[str]:
    """Remember then recall through the sync or async SDK; the recalled contents."""
    text = f"The transport test {uuid.uuid4().hex[:8]} went through"
    if client == "sync":
        with Memstore(api_key=key, base_url=url, **options) as ms:
            ms.remember(text, session="transport")
            return [m.content for m in ms.recall(text, session="transport")]

    async def run() -> list[str]:
        async with AsyncMemstore(api_key=key, base_url=url, **options) as ms:
            await ms.remember(text, session="transport")
            return [m.content for m in await ms.recall(text, session="transport")]

    return asyncio.run(run())


CLIENTS = ["sync", "async"]


@pytest.mark.parametrize("client", CLIENTS)
def test_an_https_server_is_verified_by_default(tls, key, client):
    url, _ = tls
    with pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED") as raised:
        _round_trip(client, key, url, max_retries=0)
    assert str(raised.value).startswith(f"cannot reach {url}: ")


@pytest.mark.parametrize("client", CLIENTS)
def test_an_https_server_is_reached_when_ssl_cert_file_trusts_it(tls, key, client, monkeypatch):
    url, ca = tls
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    found = _round_trip(client, key, url)
    assert found and found[0].startswith("The transport test")


@pytest.mark.parametrize("client", CLIENTS)
def test_the_proxy_the_environment_names_is_used_unless_no_proxy_covers_the_host(
    server, key, client, monkeypatch
):
    proxy = ForwardProxy(server.port)
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://{LOOPBACK}:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert _round_trip(client, key, server.url)
        assert proxy.connections >= 2  # the remember and the recall
        through = proxy.connections
        monkeypatch.setenv("NO_PROXY", LOOPBACK)
        assert _round_trip(client, key, server.url)
        assert proxy.connections == through
    finally:
        proxy.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_server_that_is_not_there_is_an_api_connection_error(client):
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        url = f"http://{LOOPBACK}:{s.getsockname()[1]}"  # bound, never listening: refused
    with pytest.raises(APIConnectionError) as raised:
        _round_trip(client, "am_live_" + "x" * 40, url, max_retries=0)
    assert str(raised.value).startswith(f"cannot reach {url}: ")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_server_that_does_not_answer_times_out(client):
    listener = socket.create_server((LOOPBACK, 0))  # accepts, never answers
    url = f"http://{LOOPBACK}:{listener.getsockname()[1]}"
    try:
        start = time.monotonic()
        with pytest.raises(APIConnectionError, match=f"cannot reach {url}: "):
            _round_trip(client, "am_live_" + "x" * 40, url, max_retries=0, timeout=0.5)
        assert time.monotonic() - start < 5
    finally:
        listener.close()
