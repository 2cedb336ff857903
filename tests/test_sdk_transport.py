"""The SDK's transports against a real server: TLS verified by default, proxies from the
environment, and the same errors for a server that cannot be reached or does not answer.

The sync client sends with urllib3 and the async one with httpx (memstore/http_transport.py);
each behaviour here is checked on both. TLS is a loopback proxy that terminates TLS with a
certificate made for the test and forwards the bytes to a real `memstore serve`.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import sys
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
from tests.relays import LOOPBACK, ForwardProxy, Relay, Socks5Proxy


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
def test_a_socks5_proxy_the_environment_names_is_used(server, key, client, monkeypatch):
    proxy = Socks5Proxy()
    try:
        for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("ALL_PROXY", f"socks5://{LOOPBACK}:{proxy.port}")
        found = _round_trip(client, key, server.url)
        assert found and found[0].startswith("The transport test")
        assert proxy.targets and set(proxy.targets) == {(LOOPBACK, server.port)}
    finally:
        proxy.close()


def test_a_socks_proxy_without_pysocks_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    for module in ("socks", "urllib3.contrib.socks"):
        monkeypatch.setitem(sys.modules, module, None)  # as if PySocks were not installed
    with pytest.raises(ImportError, match=r"memstore-ai\[socks\]"):
        Memstore(api_key="am_live_" + "x" * 40, base_url="http://127.0.0.1:9")


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
