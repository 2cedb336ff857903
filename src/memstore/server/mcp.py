"""``/mcp``: the MCP tools over streamable HTTP inside the API server, behind the /v1 keys."""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from memstore.client import Memstore
from memstore.errors import AuthenticationError
from memstore.local import LocalBackend
from memstore.mcp_server import SDKMemories, Target, ToolContext, build_server
from memstore.server.auth import authenticate


class MCPEndpoint:
    """The ASGI endpoint of ``/mcp``: checks the Bearer key as /v1 does, then hands the
    request to FastMCP's stateless streamable-HTTP transport.

    Stateless with JSON responses: every POST is self-contained, so any worker process can
    answer any request (no sticky sessions); the tools need no server-to-client streams.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.server = build_server(
            self._target,
            stateless_http=True,
            json_response=True,
            # Bearer keys guard every request, so the SDK's Host/Origin check (meant for
            # unauthenticated local servers) would only refuse legitimate hostnames.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.server.streamable_http_app()  # creates the session manager
        self.session_manager = self.server.session_manager

    def _target(self, ctx: ToolContext) -> Target:
        request = ctx.request_context.request
        account = request.scope.get("state", {}).get("account") if request else None
        if request is None or account is None:  # only if mounted without __call__
            raise ToolError("not authenticated (unauthorized)")
        session = request.query_params.get("session") or None
        # the SDK's own in-process backend, as this key's account (the same calls as stdio)
        client = Memstore(backend=LocalBackend(self.engine, account))
        return Target(SDKMemories(client), session)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method not in ("POST", "DELETE"):
            # No server-to-client stream in stateless mode; the spec allows 405 for GET.
            message = "MCP over streamable HTTP: POST JSON-RPC messages to this URL"
            await _error(scope, 405, "method_not_allowed", message, {"Allow": "POST, DELETE"})(
                scope, receive, send
            )
            return
        header = request.headers.get("authorization")
        try:
            account = await anyio.to_thread.run_sync(authenticate, self.engine.store, header)
        except AuthenticationError as exc:
            headers = {"WWW-Authenticate": "Bearer"}
            await _error(scope, 401, exc.code, exc.message, headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["account"] = account
        await self.session_manager.handle_request(scope, receive, send)


def _error(
    scope: Scope, status: int, code: str, message: str, headers: dict[str, str]
) -> JSONResponse:
    """The API's error body, ``{"error": {"code", "message", "request_id"}}``."""
    request_id = scope.get("state", {}).get("request_id")
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    return JSONResponse(body, status, headers=headers)
