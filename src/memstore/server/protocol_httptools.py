"""uvicorn's httptools protocol with the header timeout, head limit and JSON 400 of
``protocol.MemstoreH11Protocol`` (the reasons are in protocol.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from memstore.server.protocol import (
    MAX_HEAD_BYTES,
    HeaderTimer,
    bad_request_body,
    bad_request_headers,
)


class HeadTooLargeError(Exception):
    """The request line and headers passed ``MAX_HEAD_BYTES`` (raised inside the parser)."""


class MemstoreHttpToolsProtocol(HeaderTimer, HttpToolsProtocol):
    """HttpToolsProtocol with the same header timeout, 16 KiB head limit and JSON 400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_done = False  # the head of the next request is all in

    def _awaiting_head(self) -> bool:
        return not self._head_done

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLargeError  # the parser reports it: send_400_response

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._head_done = 0, False

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # the next request's head is already in
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._head_done = False
            self._arm_header_timer()  # the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        body = bad_request_body()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in bad_request_headers(body)]
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()
