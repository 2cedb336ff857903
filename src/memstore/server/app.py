"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from memstore import metrics
from memstore.embedding import load_embedder
from memstore.engine import MemoryEngine
from memstore.errors import MemstoreError, QuotaExceededError, RateLimitError
from memstore.models import Usage
from memstore.server.account_routes import router as account_router
from memstore.server.admin import router as admin_router
from memstore.server.admin_stats import router as admin_stats_router
from memstore.server.caller import KeyClaims
from memstore.server.console import router as console_router
from memstore.server.docs import add_docs
from memstore.server.limits import AccountLimits
from memstore.server.mcp import MCPEndpoint
from memstore.server.middleware import RequestContext
from memstore.server.observability import Observe, StoreSizeCollector
from memstore.server.routes import health_router, router
from memstore.server.settings import Settings
from memstore.stores import open_store

log = logging.getLogger("memstore.server")

_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _unreadable_body(exc: BaseException | None) -> str:
    """Why FastAPI could not parse a JSON body (it raises a bare 400 for these)."""
    if isinstance(exc, RecursionError):
        return "request body is nested too deeply to parse"
    if isinstance(exc, UnicodeDecodeError):
        return "request body is not valid UTF-8 JSON"
    return "request body could not be parsed as JSON"


def _request_id(request: Request) -> str | None:
    request_id: str | None = request.scope.get("state", {}).get("request_id")
    return request_id


def _error(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    request_id = _request_id(request)
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id}},
        status_code=status,
        headers=headers,
    )


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this request's path."""
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.routes):
            allowed.append(method)
    return ", ".join(allowed)


def create_app(settings: Settings | None = None, engine: MemoryEngine | None = None) -> FastAPI:
    """Build the app over ``engine``, or over the store and embedder ``settings`` name."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp_endpoint.session_manager.run():
            yield
        if owns_engine:  # closing waits for the database: not on the event loop
            await asyncio.to_thread(app.state.engine.close)  # flushes recall hits too

    owns_engine = engine is None
    if engine is None:
        store = open_store(
            data_dir=settings.data_dir,
            database_url=settings.database_url,
            pool_size=settings.database_pool_size,
        )
        engine = MemoryEngine(
            store,
            load_embedder(
                settings.embedder, handles=settings.embed_handles, threads=settings.embed_threads
            ),
        )

    app = FastAPI(
        title="memstore",
        version="1",
        summary="Persistent, shared memory for AI agents.",
        lifespan=lifespan,
        docs_url=None,  # served by add_docs from the package's own Swagger UI
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.limits = AccountLimits(
        settings.rate_limit_per_minute,
        settings.max_concurrent_per_account,
        settings.concurrency_wait_seconds,
    )
    app.state.key_claims = KeyClaims()  # server/caller.py: one worker-thread hop per request
    app.include_router(router)
    app.include_router(account_router)
    app.include_router(admin_router)
    app.include_router(console_router)
    app.include_router(admin_stats_router)
    mcp_endpoint = MCPEndpoint(engine)  # MCP over streamable HTTP, same keys as /v1
    # an ASGI app as the endpoint (Starlette's stubs only describe request handlers)
    app.router.add_route("/mcp", mcp_endpoint, include_in_schema=False)  # type: ignore[arg-type]
    app.include_router(health_router)
    add_docs(app)

    def quota_headers(usage: Usage) -> dict[str, str]:
        headers = {"X-Quota-Reset": usage.resets_at.isoformat().replace("+00:00", "Z")}
        if usage.ops_limit is not None:
            headers["X-Quota-Limit"] = str(usage.ops_limit)
            headers["X-Quota-Remaining"] = str(usage.ops_remaining)
        return headers

    app.add_middleware(
        RequestContext,
        max_body_bytes=settings.max_body_bytes,
        quota_headers=quota_headers,
        body_timeout=settings.body_timeout_seconds,
    )
    # Outermost: the access log and request metrics see every response, 413s and 500s too.
    app.add_middleware(Observe, log_user_data=settings.log_user_data)
    if settings.metrics:
        metrics.enable()
        store_size = StoreSizeCollector(engine.store)

        @app.get("/metrics", include_in_schema=False)
        def prometheus_metrics() -> Response:
            """Prometheus text format, summed over worker processes."""
            body, content_type = metrics.render([store_size])
            return Response(body, media_type=content_type)

    @app.exception_handler(MemstoreError)
    async def memstore_error(request: Request, exc: MemstoreError) -> JSONResponse:
        headers = dict(exc.headers)
        if isinstance(exc, QuotaExceededError | RateLimitError) and exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status >= 500:
            log.error("request failed: %s: %s", exc.code, exc.message)
        return _error(request, exc.status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(request, 400, "bad_request", "request body is not valid JSON")
        whole_body = [e for e in errors if tuple(e.get("loc", ())) == ("body",)]
        if whole_body and whole_body[0].get("type") == "missing":
            return _error(request, 400, "bad_request", "request body is empty; send a JSON object")
        if whole_body and not _is_json(request):
            return _error(
                request,
                400,
                "bad_request",
                "request body must be a JSON object sent with 'Content-Type: application/json'",
            )
        if whole_body:
            return _error(request, 422, "invalid_request", "request body must be a JSON object")
        return _error(request, 422, "invalid_request", _describe(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, MemstoreError):
            # Raised while FastAPI read the body (too large, too slow): FastAPI reports any
            # such failure as a 400, but the cause knows its own status (issue 14, item 11).
            return await memstore_error(request, exc.__cause__)
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 405:
            # Starlette lists only the first route matching the path; GET and POST recall
            # are two routes, so OPTIONS said "Allow: GET" (issue 14, item 11).
            headers = {**(exc.headers or {}), "Allow": _allowed_methods(request)}
            return _error(request, 405, code, message, headers)
        if exc.status_code == 400 and exc.__cause__ is not None:
            message = _unreadable_body(exc.__cause__)
        return _error(request, exc.status_code, code, message, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", extra={"fields": {"request_id": _request_id(request)}})
        return _error(request, 500, "internal_error", "internal error; see the server log")

    return app
