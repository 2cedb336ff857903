"""The access log and request metrics: one line and one observation per HTTP request.

Both name a request by its route template (``/v1/memory/{memory_id}``), never by its URL:
the URL carries query text and session names, which are user data. Only with
``log_user_data`` does the log add the full target (debugging on your own data).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from starlette.routing import Match

from memstore import metrics
from memstore.server.middleware import ASGIApp, Message, Receive, Scope, Send
from memstore.stores.base import Store

access_log = logging.getLogger("memstore.access")
UNMATCHED = "unmatched"  # any path no route matched (a 404): never the path itself


def route_template(scope: Scope) -> str:
    """The template of the route that served ``scope`` (under its mount's path, if any).

    A request refused before routing (a body too large, a rate limit) is named by the
    route its path and method would have reached."""
    root = scope.get("root_path") or ""
    path = _template(scope.get("route"))
    if path is not None:
        return root + path
    if root:
        return f"{root}/*"
    router = getattr(scope.get("app"), "router", None)
    return _would_route(scope, getattr(router, "routes", ())) or UNMATCHED


def _would_route(scope: Scope, routes: Iterable[Any]) -> str | None:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps routers whole
        if inner is not None:
            found = _would_route(scope, inner.routes)
            if found:
                return found
        elif _template(route) is not None:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return _template(route)
    return None


def _template(route: Any) -> str | None:
    """A route's path without convertor names: ``/v1/memory/{memory_id}``."""
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


class Observe:
    """ASGI middleware (outermost): times each request, then logs and counts it."""

    def __init__(self, app: ASGIApp, log_user_data: bool = False) -> None:
        self.app = app
        self.log_user_data = log_user_data

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - start
            route = route_template(scope)
            metrics.observe_request(route, scope["method"], status, seconds)
            self._log(scope, route, status, seconds)

    def _log(self, scope: Scope, route: str, status: int, seconds: float) -> None:
        state = scope.get("state", {})
        fields: dict[str, Any] = {
            "request_id": state.get("request_id"),
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "account": state.get("account"),
        }
        if self.log_user_data:
            query = scope.get("query_string", b"").decode("latin-1")
            fields["target"] = scope.get("path", "") + (f"?{query}" if query else "")
            client = scope.get("client")
            fields["client"] = f"{client[0]}:{client[1]}" if client else None
        level = logging.ERROR if status >= 500 else logging.INFO
        access_log.log(level, "%s %s %s", scope["method"], route, status, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus any ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level message key=value ...``: the access line's fields after its message."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if not fields:
            return line
        extra = " ".join(
            f"{k}={v}"
            for k, v in fields.items()
            if v is not None and k not in ("method", "route", "status")
        )
        return f"{line} {extra}"


def log_config(log_format: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn and memstore in ``text`` or ``json``."""
    if log_format not in ("text", "json"):
        raise ValueError("log format must be 'text' or 'json'")
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if log_format == "json"
        else {
            "()": f"{__name__}.TextFormatter",
            "fmt": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
        }
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
    }
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            name: {"handlers": ["default"], "level": level, "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "memstore")
        }
        # uvicorn's own access log prints the full URL (?q=...&session=...): off.
        | {"uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False}},
    }


class StoreSizeCollector:
    """Store size gauges, computed from the database at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterable[GaugeMetricFamily]:
        size = self.store.size_stats()
        yield GaugeMetricFamily(
            "memstore_memories", "Memories stored (expired ones until purged).", size.memories
        )
        yield GaugeMetricFamily(
            "memstore_sessions",
            "Distinct (account, session) pairs holding memories.",
            size.sessions,
        )
        accounts = GaugeMetricFamily("memstore_accounts", "Accounts, by plan.", labels=["plan"])
        for plan, count in sorted(size.accounts_by_plan.items()):
            accounts.add_metric([plan], count)
        yield accounts
        yield GaugeMetricFamily(
            "memstore_database_bytes", "Size of the database on disk.", size.database_bytes
        )
