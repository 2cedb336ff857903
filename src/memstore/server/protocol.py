"""uvicorn's HTTP protocols with a header timeout and JSON errors (issue 14, items 3 and 11).

uvicorn starts no timer until a first request is complete, so a client that connects and
sends half a request line or half its headers held the connection forever; and a request
line or header block the parser refuses (over 16 KiB, malformed) got a plain-text 400. Here
such a connection is closed after ``MEMSTORE_HEADER_TIMEOUT_SECONDS``, and the 400 is the
API's JSON error body. (Slow bodies are timed by the app: see middleware.RequestContext.)

``server_protocol()`` is the one ``memstore serve`` runs: the httptools parser (C, llhttp)
when it is installed, which costs ~0.2 ms less CPU per request than h11 (pure Python:
docs/performance-server.md), else h11.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import TYPE_CHECKING

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from memstore.server.settings import Settings

MAX_HEAD_BYTES = 16 * 1024  # request line + headers; h11 is given the same limit (cli.py)


@cache
def header_timeout() -> float:
    return Settings().header_timeout_seconds


def bad_request_body() -> bytes:
    return json.dumps(
        {
            "error": {
                "code": "bad_request",
                "message": "the request line or headers are malformed or over 16 KiB "
                "(a URL that long is refused: send long values in a POST body)",
                "request_id": None,
            }
        }
    ).encode()


def bad_request_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]


class HeaderTimer:
    """The header timeout both protocol classes keep: armed when a connection opens or a
    response ends, cancelled once a request's head is in; when it fires while the head is
    still awaited (``_awaiting_head``), the connection is closed."""

    if TYPE_CHECKING:  # provided by uvicorn's protocol classes
        loop: asyncio.AbstractEventLoop
        transport: asyncio.Transport

    _header_timer: asyncio.TimerHandle | None = None

    def _awaiting_head(self) -> bool:
        raise NotImplementedError

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        if header_timeout() > 0:
            self._header_timer = self.loop.call_later(header_timeout(), self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            self.transport.close()


class MemstoreH11Protocol(HeaderTimer, H11Protocol):
    """H11Protocol that closes connections whose headers do not arrive in time."""

    def _awaiting_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    # H11Protocol narrows asyncio.Protocol's BaseTransport to Transport (with its own ignore).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        body = bad_request_body()
        headers = bad_request_headers(body)
        try:
            self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers)))
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # h11 cannot answer in this state: just close
            pass
        self.transport.close()


def server_protocol() -> type[asyncio.Protocol]:
    """The protocol class ``memstore serve`` runs: httptools if installed, else h11."""
    try:
        from memstore.server.protocol_httptools import MemstoreHttpToolsProtocol
    except ImportError:  # no httptools wheel for this platform
        return MemstoreH11Protocol
    return MemstoreHttpToolsProtocol
