"""Loopback TCP relays for the SDK transport tests: a plain and a TLS-terminating relay,
an HTTP forward proxy and a SOCKS5 proxy, each piping bytes to a real server."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable

LOOPBACK = "127.0.0.1"


def pump(
    src: socket.socket, dst: socket.socket, each: Callable[[bytes], bytes | None] | None = None
) -> None:
    """Copy ``src`` to ``dst`` until either ends, then shut both; ``each`` may rewrite each
    chunk or stop the copy (None)."""
    try:
        while data := src.recv(65536):
            if each is not None and (data := each(data)) is None:
                break
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
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

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
        pump(upstream, client)


class Socks5Proxy(Relay):
    """A SOCKS5 proxy (no authentication, CONNECT only) that records where each
    connection asked to go, and goes there."""

    def __init__(self) -> None:
        super().__init__(upstream=0)
        self.targets: list[tuple[str, int]] = []

    def _serve(self, client: socket.socket) -> None:
        def read(n: int) -> bytes:
            data = b""
            while len(data) < n and (chunk := client.recv(n - len(data))):
                data += chunk
            return data

        _, methods = read(2)
        read(methods)
        client.sendall(b"\x05\x00")  # no authentication
        _, command, _, kind = read(4)
        if kind == 1:
            host = socket.inet_ntoa(read(4))
        elif kind == 3:
            host = read(read(1)[0]).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, read(16))
        (port,) = struct.unpack("!H", read(2))
        if command != 1:
            client.sendall(b"\x05\x07\x00\x01" + bytes(6))  # command not supported
            client.close()
            return
        self.targets.append((host, port))
        upstream = socket.create_connection((host, port))
        client.sendall(b"\x05\x00\x00\x01" + bytes(6))
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)
