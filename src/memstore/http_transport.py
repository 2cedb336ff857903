"""The sync SDK's HTTP transport: one urllib3 connection pool per client.

httpx spent ~1.2 ms of client CPU on a cached recall against ~0.7 ms for urllib3 over the
same keep-alive connection (docs/performance-server.md), so the sync client sends with
urllib3; the async client keeps httpx. What the httpx.Client did stays: keep-alive, one
timeout for connecting and for each read, TLS verified with httpx's own CA choice (certifi,
or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``
from the environment, and no redirects followed. Retries are the caller's (remote.py).
"""

from __future__ import annotations

import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import urllib3
from urllib3.exceptions import DependencyWarning, HTTPError

POOL_SIZE = 20  # connections kept alive per client, as httpx kept; more open when threads need
SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")


@dataclass(frozen=True)
class Answer:
    """A server's answer as both SDK transports report it."""

    status: int
    headers: Mapping[str, str]  # looked up by any case
    body: bytes


class TransportError(Exception):
    """The request did not get an answer (refused, reset, timed out, TLS refused)."""


def env_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url``, as httpx reads it (no system
    settings): ``<scheme>_proxy``, else ``all_proxy``, unless ``no_proxy`` covers the host."""
    url = urllib3.util.parse_url(base_url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme or "http") or proxies.get("all")
    # proxy_bypass_environment: NO_PROXY's rules as urllib applies them (not in typeshed)
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(url.host or "", proxies):
        return None
    return proxy


class SyncTransport:
    """Sends requests to one server over pooled keep-alive connections (thread-safe)."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float) -> None:
        self.base_url = base_url
        self.prefix = urllib3.util.parse_url(base_url).path or ""  # a server under a path
        self.headers = dict(headers)
        options: dict[str, Any] = {
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "retries": False,
            "maxsize": POOL_SIZE,
        }
        if base_url.startswith("https:"):
            options["ssl_context"] = httpx.create_ssl_context()
        proxy = env_proxy(base_url)
        socks = proxy is not None and proxy.split(":", 1)[0].lower() in SOCKS_SCHEMES
        self.proxied = proxy is not None and not socks  # an HTTP proxy: absolute URLs
        self.manager: urllib3.PoolManager
        if proxy is None:
            self.manager = urllib3.PoolManager(**options)
        elif socks:
            self.manager = _socks_manager(proxy, options)
        else:
            self.manager = urllib3.ProxyManager(proxy, **options)
        self.pool = self.manager.connection_from_url(base_url)

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> Answer:
        """``method path`` (path with its query string); TransportError if no answer."""
        sent = {**self.headers, **headers}
        try:
            if self.proxied:  # a proxy for plain HTTP takes the absolute URL
                response = self.manager.urlopen(
                    method, self.base_url + path, body=body, headers=sent, redirect=False
                )
            else:
                response = self.pool.urlopen(
                    method, self.prefix + path, body=body, headers=sent, redirect=False
                )
        except HTTPError as exc:
            raise TransportError(str(exc)) from exc
        return Answer(response.status, response.headers, response.data)

    def close(self) -> None:
        self.manager.clear()


def _socks_manager(proxy: str, options: dict[str, Any]) -> urllib3.PoolManager:
    """A pool manager that connects through the SOCKS proxy ``proxy`` (needs PySocks)."""
    try:
        with warnings.catch_warnings():  # urllib3 warns, then raises, without PySocks
            warnings.simplefilter("ignore", DependencyWarning)
            from urllib3.contrib.socks import SOCKSProxyManager
    except ImportError as exc:
        raise ImportError(
            f"the environment names a SOCKS proxy ({proxy.split('://', 1)[0]}://...), which"
            " needs PySocks: pip install 'memstore-ai[socks]'"
        ) from exc
    return SOCKSProxyManager(proxy, **options)
