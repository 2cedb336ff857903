"""ASGI middleware: request ids, the request body limit, and quota headers."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from memstore.accounts import UsageMeter, current_meter
from memstore.errors import PayloadTooLargeError, RequestTimeoutError
from memstore.models import Usage

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


ON_DONE = "on_done"  # scope["state"][ON_DONE]: callables run once the request is over


def error_body(code: str, message: str, request_id: str | None) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id}}
    ).encode()


class RequestContext:
    """Gives every request an id (``X-Request-ID``), enforces the body size limit, and runs
    the request's ``on_done`` callables once it is over (a per-account slot: caller.py).

    Bodies announced too large by Content-Length are refused before they are read; chunked
    bodies are counted as they arrive and refused when they pass the limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        quota_headers: Callable[[Usage], dict[str, str]],
        body_timeout: float = 0.0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.quota_headers = quota_headers
        self.body_timeout = body_timeout  # seconds to receive the whole body; 0: no limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(8)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        limit = self.max_body_bytes
        # Quota headers come from the usage the request's own charge returned (no database
        # read on the event loop); requests that charge nothing carry none. Each request runs
        # in its own task, so the context variable is the request's own.
        meter = UsageMeter()
        current_meter.set(meter)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if meter.usage is not None:
                    present = {k.lower() for k, _ in headers}
                    for name, value in self.quota_headers(meter.usage).items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._too_large(send_with_headers, request_id)
            return

        received = 0
        complete = False
        deadline = None

        async def counted_receive() -> Message:
            nonlocal received, complete, deadline
            if complete or self.body_timeout <= 0:
                message = await receive()
            else:
                # A client that stops sending its body is dropped (issue 14, item 3).
                # asyncio.timeout_at, not wait_for: wait_for wraps receive() in a new Task.
                deadline = deadline or asyncio.get_running_loop().time() + self.body_timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise RequestTimeoutError(
                        f"the request body was not sent within {self.body_timeout:g} s",
                        headers={"Connection": "close"},
                    ) from None
                complete = not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(self._message())
            return message

        try:
            await self.app(scope, counted_receive, send_with_headers)
        finally:
            for release in state.pop(ON_DONE, ()):
                release()

    def _message(self) -> str:
        return f"request body is larger than {self.max_body_bytes} bytes"

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = error_body(PayloadTooLargeError.code, self._message(), request_id)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
