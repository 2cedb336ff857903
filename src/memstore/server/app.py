"""The FastAPI application factory."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from memstore import metrics
from memstore.embedding import load_embedder
from memstore.engine import MemoryEngine
from memstore.errors import MemstoreError, QuotaExceededError
from memstore.server.admin import router as admin_router
from memstore.server.admin_stats import router as admin_stats_router
from memstore.server.docs import add_docs
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
    return request.scope.get("state", {}).get("request_id")


def _error(request: Request, status: int, code: str, message: str, headers=None) -> JSONResponse:
    request_id = _request_id(request)
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id}},
        status_code=status,
        headers=headers,
    )


def _describe(errors: list[dict]) -> str:
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(settings: Settings | None = None, engine: MemoryEngine | None = None) -> FastAPI:
    """Build the app over ``engine``, or over the store and embedder ``settings`` name."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with mcp_endpoint.session_manager.run():
            yield
        if owns_engine:
            app.state.engine.store.close()

    owns_engine = engine is None
    if engine is None:
        store = open_store(
            data_dir=settings.data_dir,
            database_url=settings.database_url,
            pool_size=settings.database_pool_size,
        )
        engine = MemoryEngine(store, load_embedder(settings.embedder))

    app = FastAPI(
        title="memstore",
        version="1",
        summary="Persistent, shared memory for AI agents.",
        lifespan=lifespan,
        docs_url=None,  # served by add_docs from the package's own Swagger UI
        redoc_url=None,
    )
    app.state.engine = engine
    app.include_router(router)
    app.include_router(admin_router, responses=router.responses)  # 400 etc., as on /v1
    app.include_router(admin_stats_router)
    mcp_endpoint = MCPEndpoint(engine)  # MCP over streamable HTTP, same keys as /v1
    app.router.add_route("/mcp", mcp_endpoint, include_in_schema=False)
    app.include_router(health_router)
    add_docs(app)

    def quota_headers(account_id: str) -> dict[str, str]:
        usage = engine.usage(account_id)
        headers = {"X-Quota-Reset": usage.resets_at.isoformat().replace("+00:00", "Z")}
        if usage.ops_limit is not None:
            headers["X-Quota-Limit"] = str(usage.ops_limit)
            headers["X-Quota-Remaining"] = str(usage.ops_remaining)
        return headers

    app.add_middleware(
        RequestContext, max_body_bytes=settings.max_body_bytes, quota_headers=quota_headers
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
        if isinstance(exc, QuotaExceededError) and exc.retry_after:
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
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400 and exc.__cause__ is not None:
            message = _unreadable_body(exc.__cause__)
        return _error(request, exc.status_code, code, message, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", extra={"fields": {"request_id": _request_id(request)}})
        return _error(request, 500, "internal_error", "internal error; see the server log")

    return app
