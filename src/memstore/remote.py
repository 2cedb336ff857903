"""HTTP transports for the SDK: how each operation maps to a request, sync and async.

Each operation is described once (``_request_for`` / ``_parse``); the sync and async
transports only differ in how they send. Retries use exponential backoff with jitter on
connection errors, 5xx and 429 (honouring Retry-After), but never wait out a monthly quota.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx

from memstore.errors import (
    APIConnectionError,
    AuthenticationError,
    error_from_response,
)
from memstore.models import (
    Memory,
    MemoryPage,
    RecalledMemory,
    RememberResult,
    SessionInfo,
    Usage,
)

RETRY_STATUSES = {429, 502, 503, 504}
MAX_RETRY_WAIT = 30.0


def _sessions_param(session: Any) -> Any:
    if session is None:
        return None
    if isinstance(session, str):
        return session
    return [s for s in session if s is not None] or None


def _request_for(op: str, kw: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(method, path, httpx request kwargs) for one SDK operation."""
    if op == "remember_many":
        items = [{k: v for k, v in i.items() if v is not None} for i in kw["items"]]
        if len(items) == 1:
            return "POST", "/v1/memory/remember", {"json": items[0]}
        return "POST", "/v1/memory/remember/batch", {"json": {"memories": items}}
    if op == "recall":
        body = {"query": kw["query"], "limit": kw["limit"], "session": kw["session"]}
        if kw.get("min_score") is not None:
            body["min_score"] = kw["min_score"]
        if kw.get("filters"):
            body["filters"] = kw["filters"]
        return "POST", "/v1/memory/recall", {"json": body}
    if op == "get":
        return "GET", f"/v1/memory/{kw['memory_id']}", {}
    if op == "list":
        params = {"limit": kw["limit"], "session": _sessions_param(kw["session"])}
        if kw.get("cursor"):
            params["cursor"] = kw["cursor"]
        return "GET", "/v1/memory", {"params": {k: v for k, v in params.items() if v is not None}}
    if op == "update":
        body = {k: kw[k] for k in ("content", "metadata") if kw.get(k) is not None}
        return "PATCH", f"/v1/memory/{kw['memory_id']}", {"json": body}
    if op == "forget":
        return "DELETE", f"/v1/memory/{kw['memory_id']}", {}
    if op == "forget_session":
        shared = kw["session"] is None
        params = {"shared": "true"} if shared else {"session": kw["session"]}
        return "DELETE", "/v1/memory", {"params": params}
    if op == "sessions":
        return "GET", "/v1/sessions", {}
    if op == "usage":
        return "GET", "/v1/usage", {}
    raise ValueError(f"unknown operation {op!r}")


def _parse(op: str, kw: dict[str, Any], data: Any) -> Any:
    if op == "remember_many":
        rows = [data] if len(kw["items"]) == 1 else data["memories"]
        return [
            RememberResult(memory=Memory.model_validate(r), deduplicated=r["deduplicated"])
            for r in rows
        ]
    if op == "recall":
        return [RecalledMemory.model_validate(m) for m in data["memories"]]
    if op in ("get", "update"):
        return Memory.model_validate(data)
    if op == "list":
        return MemoryPage.model_validate(data)
    if op == "forget":
        return None
    if op == "forget_session":
        return int(data["deleted"])
    if op == "sessions":
        return [SessionInfo.model_validate(s) for s in data["sessions"]]
    if op == "usage":
        return Usage.model_validate(data)
    raise ValueError(f"unknown operation {op!r}")


class _Retrying:
    """Shared retry policy and response handling of both HTTP transports."""

    def __init__(self, api_key: str | None, base_url: str, max_retries: int) -> None:
        if not api_key:
            raise AuthenticationError(
                "no API key: pass Memstore(api_key=...) or set MEMSTORE_API_KEY "
                "(or use Memstore.local(path) for the embedded store)"
            )
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "memstore-python"}
        self.max_retries = max_retries

    def _wait(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retrying, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            if response.status_code not in RETRY_STATUSES:
                return None
            retry_after = response.headers.get("retry-after", "")
            if retry_after.isdigit():
                wait = float(retry_after)
                return wait if wait <= MAX_RETRY_WAIT else None
        return float(min(MAX_RETRY_WAIT, 0.25 * 2**attempt) * (0.5 + random.random() / 2))

    @staticmethod
    def _result(op: str, kw: dict[str, Any], response: httpx.Response) -> Any:
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = response.text
        if response.status_code >= 400:
            raise error_from_response(response.status_code, data, dict(response.headers))
        return _parse(op, kw, data)


class HTTPTransport(_Retrying):
    def __init__(self, api_key: str | None, base_url: str, timeout: float, max_retries: int):
        super().__init__(api_key, base_url, max_retries)
        self.client = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout)

    def call(self, op: str, **kw: Any) -> Any:
        method, path, request = _request_for(op, kw)
        attempt = 0
        while True:
            try:
                response = self.client.request(method, path, **request)
            except httpx.TransportError as exc:
                wait = self._wait(attempt, None)
                if wait is None:
                    raise APIConnectionError(f"cannot reach {self.base_url}: {exc}") from exc
            else:
                wait = self._wait(attempt, response)
                if wait is None:
                    return self._result(op, kw, response)
            time.sleep(wait)
            attempt += 1

    def close(self) -> None:
        self.client.close()


class AsyncHTTPTransport(_Retrying):
    def __init__(self, api_key: str | None, base_url: str, timeout: float, max_retries: int):
        super().__init__(api_key, base_url, max_retries)
        self.client = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=timeout
        )

    async def call(self, op: str, **kw: Any) -> Any:
        method, path, request = _request_for(op, kw)
        attempt = 0
        while True:
            try:
                response = await self.client.request(method, path, **request)
            except httpx.TransportError as exc:
                wait = self._wait(attempt, None)
                if wait is None:
                    raise APIConnectionError(f"cannot reach {self.base_url}: {exc}") from exc
            else:
                wait = self._wait(attempt, response)
                if wait is None:
                    return self._result(op, kw, response)
            await asyncio.sleep(wait)
            attempt += 1

    async def close(self) -> None:
        await self.client.aclose()
