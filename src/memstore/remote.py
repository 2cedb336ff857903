"""The HTTP backends: the SDK talking to a memstore server, sync (``HTTPBackend``) and async.

Each operation is described once, as a ``Call`` (method, path, body, how to read the answer)
built by ``Routes``; the two backends only differ in how they send it: the sync one over
urllib3 (http_transport.py: about half of httpx's CPU per request), the async one over
httpx. Only those, pydantic and memstore's own light modules are imported here: no numpy,
FastAPI or model.

Retries: connection errors and the statuses in ``RETRY_STATUSES`` (408, 429, 500, 502, 503,
504, and 409 when the server sends Retry-After: an identical request still in progress) are
retried with exponential backoff and jitter, honouring Retry-After up to ``MAX_RETRY_WAIT``
(a monthly quota, which resets in days, raises QuotaExceededError at once). Every POST,
PATCH and DELETE carries an ``Idempotency-Key``, one per logical request and the same on
each of its retries, so the server applies a retried write once and replays its answer.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import httpx

from memstore import validation as check
from memstore.backend import AsOf, Metadata, RememberItem, SessionsArg
from memstore.errors import APIConnectionError, AuthenticationError, error_from_response
from memstore.http_transport import Answer, SyncTransport, TransportError
from memstore.models import (
    Memory,
    MemoryPage,
    RecalledMemory,
    RecallResponse,
    RememberResult,
    SessionInfo,
    Stats,
    Usage,
)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_WAIT = 30.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
T = TypeVar("T")


def server_root(base_url: str) -> str:
    """The server's root URL; a base URL ending in the API prefix ``/v1`` is accepted too."""
    return base_url.rstrip("/").removesuffix("/v1")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its successful answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    parse_body: Callable[[bytes], T] | None = None  # a successful answer's bytes, read at once

    def target(self) -> str:
        """The path with its query string (repeated for list values)."""
        return f"{self.path}?{urlencode(self.params, doseq=True)}" if self.params else self.path

    def body(self) -> bytes | None:
        """The JSON body as httpx's ``json=`` encoded it."""
        if self.json is None:
            return None
        text = json.dumps(self.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode()


def _item(item: RememberItem) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def _remembered(data: Any) -> RememberResult:
    return RememberResult(memory=Memory.model_validate(data), deduplicated=data["deduplicated"])


def _memory_path(memory_id: str) -> str:
    return "/v1/memory/" + quote(check.memory_id(memory_id), safe="")


def _sessions_body(session: SessionsArg) -> str | list[str | None] | None:
    return session if session is None or isinstance(session, str) else list(session)


def _over_time(include_superseded: bool, as_of: AsOf) -> dict[str, Any]:
    """include_superseded / as_of as sent (a datetime as ISO 8601); defaults left out."""
    out: dict[str, Any] = {}
    if include_superseded is not False:
        out["include_superseded"] = include_superseded
    if as_of is not None:
        out["as_of"] = as_of.isoformat() if isinstance(as_of, datetime) else as_of
    return out


def _list_params(session: SessionsArg, limit: int, cursor: str | None) -> dict[str, Any]:
    """Query parameters of a listing: repeated ``session``, plus ``shared=true`` when the
    shared session is among several (a query string cannot carry a null)."""
    sessions = check.sessions(session)  # None: all; "" is the shared session
    params: dict[str, Any] = {"limit": limit}
    if sessions is None:
        params["session"] = "*"
    elif sessions != [""]:
        params["session"] = [s for s in sessions if s]
        if "" in sessions:
            params["shared"] = "true"
    if cursor:
        params["cursor"] = cursor
    return params


class Routes:
    """How each operation maps to an HTTP request and back (a namespace of builders)."""

    @staticmethod
    def remember(
        content: str, session: str | None, metadata: Metadata | None, ttl: float | None
    ) -> Call[RememberResult]:
        body = _item({"content": content, "session": session, "metadata": metadata, "ttl": ttl})
        return Call("POST", "/v1/memory/remember", _remembered, json=body)

    @staticmethod
    def remember_many(items: list[RememberItem]) -> Call[list[RememberResult]]:
        body = {"memories": [_item(i) for i in items]}
        return Call(
            "POST",
            "/v1/memory/remember/batch",
            lambda data: [_remembered(r) for r in data["memories"]],
            json=body,
        )

    @staticmethod
    def recall(
        query: str,
        session: SessionsArg,
        limit: int,
        min_score: float | None,
        filters: Metadata | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
        collapse: bool = True,
        explain: bool = False,
    ) -> Call[list[RecalledMemory]]:
        body: dict[str, Any] = {"query": query, "limit": limit, "session": _sessions_body(session)}
        body.update(_over_time(include_superseded, as_of))
        if min_score is not None:
            body["min_score"] = min_score
        if filters is not None:
            body["filters"] = filters
        if not collapse:
            body["collapse"] = False
        if explain:
            body["explain"] = True
        return Call(
            "POST",
            "/v1/memory/recall",
            lambda data: [RecalledMemory.model_validate(m) for m in data["memories"]],
            json=body,
            # pydantic-core reads the JSON itself: half the CPU of json.loads + validate
            parse_body=lambda raw: RecallResponse.model_validate_json(raw).memories,
        )

    @staticmethod
    def get(memory_id: str) -> Call[Memory]:
        return Call("GET", _memory_path(memory_id), Memory.model_validate)

    @staticmethod
    def list(
        session: SessionsArg,
        limit: int,
        cursor: str | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> Call[MemoryPage]:
        params = _list_params(session, limit, cursor)
        for key, value in _over_time(include_superseded, as_of).items():
            # a query string carries text: JSON's spelling of true, false and numbers
            params[key] = value if isinstance(value, str) else json.dumps(value)
        return Call("GET", "/v1/memory", MemoryPage.model_validate, params=params)

    @staticmethod
    def invalidate(memory_id: str) -> Call[Memory]:
        return Call("POST", _memory_path(memory_id) + "/invalidate", Memory.model_validate)

    @staticmethod
    def stats(session: str | None) -> Call[Stats]:
        params = {} if session is None else {"session": session}
        return Call("GET", "/v1/stats", Stats.model_validate, params=params)

    @staticmethod
    def update(memory_id: str, content: str | None, metadata: Metadata | None) -> Call[Memory]:
        body = {k: v for k, v in (("content", content), ("metadata", metadata)) if v is not None}
        return Call("PATCH", _memory_path(memory_id), Memory.model_validate, json=body)

    @staticmethod
    def forget(memory_id: str) -> Call[None]:
        return Call("DELETE", _memory_path(memory_id), lambda data: None)

    @staticmethod
    def forget_session(session: str | None) -> Call[int]:
        params = {"shared": "true"} if session is None else {"session": session}
        return Call("DELETE", "/v1/memory", lambda data: int(data["deleted"]), params=params)

    @staticmethod
    def sessions() -> Call[builtins.list[SessionInfo]]:
        return Call(
            "GET",
            "/v1/sessions",
            lambda data: [SessionInfo.model_validate(s) for s in data["sessions"]],
        )

    @staticmethod
    def usage() -> Call[Usage]:
        return Call("GET", "/v1/usage", Usage.model_validate)


class _HTTPBase:
    """What both HTTP backends share: headers, the retry policy, reading answers."""

    def __init__(self, api_key: str | None, base_url: str, max_retries: int) -> None:
        if not api_key:
            raise AuthenticationError(
                "no API key: pass Memstore(api_key=...) or set MEMSTORE_API_KEY "
                "(or use Memstore.local(path) for the embedded store)"
            )
        self.base_url = server_root(base_url)
        self.headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "memstore-python"}
        self.max_retries = max_retries

    @staticmethod
    def _attempt_headers(call: Call[Any]) -> dict[str, str]:
        """Headers of every attempt of ``call``: writes get one idempotency key for all."""
        headers = {} if call.json is None else {"Content-Type": "application/json"}
        if call.method != "GET":
            headers[IDEMPOTENCY_HEADER] = "ms_" + secrets.token_hex(16)
        return headers

    def _wait(self, attempt: int, response: Answer | None) -> float | None:
        """Seconds to wait before retrying, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            in_progress = response.status == 409 and retry_after
            if response.status not in RETRY_STATUSES and not in_progress:
                return None
            if retry_after.isdigit():
                wait = float(retry_after)
                return wait if wait <= MAX_RETRY_WAIT else None
        return min(MAX_RETRY_WAIT, 0.25 * 2.0**attempt) * (0.5 + random.random() / 2)

    @staticmethod
    def _result(call: Call[T], response: Answer) -> T:
        if call.parse_body is not None and response.status < 400:
            return call.parse_body(response.body)
        try:
            data = json.loads(response.body) if response.body else None
        except ValueError:
            data = response.body.decode("utf-8", "replace")
        if response.status >= 400:
            headers = {k.lower(): v for k, v in response.headers.items()}
            raise error_from_response(response.status, data, headers)
        return call.parse(data)

    def _unreachable(self, exc: Exception) -> APIConnectionError:
        return APIConnectionError(f"cannot reach {self.base_url}: {exc}")


class HTTPBackend(_HTTPBase):
    """Sends each operation to a memstore server over urllib3 (http_transport.py)."""

    def __init__(
        self, api_key: str | None, base_url: str, timeout: float = 30.0, max_retries: int = 3
    ) -> None:
        super().__init__(api_key, base_url, max_retries)
        self.transport = SyncTransport(self.base_url, self.headers, timeout)

    def _send(self, call: Call[T]) -> T:
        headers = self._attempt_headers(call)
        target, body = call.target(), call.body()
        attempt = 0
        while True:
            try:
                response = self.transport.request(call.method, target, headers, body)
            except TransportError as exc:
                wait = self._wait(attempt, None)
                if wait is None:
                    raise self._unreachable(exc) from exc
            else:
                wait = self._wait(attempt, response)
                if wait is None:
                    return self._result(call, response)
            time.sleep(wait)
            attempt += 1

    def remember(
        self, content: str, session: str | None, metadata: Metadata | None, ttl: float | None
    ) -> RememberResult:
        return self._send(Routes.remember(content, session, metadata, ttl))

    def remember_many(self, items: list[RememberItem]) -> list[RememberResult]:
        return self._send(Routes.remember_many(items))

    def recall(
        self,
        query: str,
        session: SessionsArg,
        limit: int,
        min_score: float | None,
        filters: Metadata | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
        collapse: bool = True,
        explain: bool = False,
    ) -> list[RecalledMemory]:
        return self._send(
            Routes.recall(
                query,
                session,
                limit,
                min_score,
                filters,
                include_superseded,
                as_of,
                collapse,
                explain,
            )
        )

    def get(self, memory_id: str) -> Memory:
        return self._send(Routes.get(memory_id))

    def list(
        self,
        session: SessionsArg,
        limit: int,
        cursor: str | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> MemoryPage:
        return self._send(Routes.list(session, limit, cursor, include_superseded, as_of))

    def invalidate(self, memory_id: str) -> Memory:
        return self._send(Routes.invalidate(memory_id))

    def stats(self, session: str | None) -> Stats:
        return self._send(Routes.stats(session))

    def update(self, memory_id: str, content: str | None, metadata: Metadata | None) -> Memory:
        return self._send(Routes.update(memory_id, content, metadata))

    def forget(self, memory_id: str) -> None:
        self._send(Routes.forget(memory_id))

    def forget_session(self, session: str | None) -> int:
        return self._send(Routes.forget_session(session))

    def sessions(self) -> builtins.list[SessionInfo]:
        return self._send(Routes.sessions())

    def usage(self) -> Usage:
        return self._send(Routes.usage())

    def close(self) -> None:
        self.transport.close()


class AsyncHTTPBackend(_HTTPBase):
    """The asyncio twin of HTTPBackend (httpx.AsyncClient; waits with asyncio.sleep)."""

    def __init__(
        self, api_key: str | None, base_url: str, timeout: float = 30.0, max_retries: int = 3
    ) -> None:
        super().__init__(api_key, base_url, max_retries)
        self.client = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=timeout
        )

    async def _send(self, call: Call[T]) -> T:
        headers = self._attempt_headers(call)
        target, body = call.target(), call.body()
        attempt = 0
        while True:
            try:
                sent = await self.client.request(call.method, target, headers=headers, content=body)
                response = Answer(sent.status_code, sent.headers, sent.content)
            except httpx.TransportError as exc:
                wait = self._wait(attempt, None)
                if wait is None:
                    raise self._unreachable(exc) from exc
            else:
                wait = self._wait(attempt, response)
                if wait is None:
                    return self._result(call, response)
            await asyncio.sleep(wait)
            attempt += 1

    async def remember(
        self, content: str, session: str | None, metadata: Metadata | None, ttl: float | None
    ) -> RememberResult:
        return await self._send(Routes.remember(content, session, metadata, ttl))

    async def remember_many(self, items: list[RememberItem]) -> list[RememberResult]:
        return await self._send(Routes.remember_many(items))

    async def recall(
        self,
        query: str,
        session: SessionsArg,
        limit: int,
        min_score: float | None,
        filters: Metadata | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
        collapse: bool = True,
        explain: bool = False,
    ) -> list[RecalledMemory]:
        return await self._send(
            Routes.recall(
                query,
                session,
                limit,
                min_score,
                filters,
                include_superseded,
                as_of,
                collapse,
                explain,
            )
        )

    async def get(self, memory_id: str) -> Memory:
        return await self._send(Routes.get(memory_id))

    async def list(
        self,
        session: SessionsArg,
        limit: int,
        cursor: str | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> MemoryPage:
        return await self._send(Routes.list(session, limit, cursor, include_superseded, as_of))

    async def invalidate(self, memory_id: str) -> Memory:
        return await self._send(Routes.invalidate(memory_id))

    async def stats(self, session: str | None) -> Stats:
        return await self._send(Routes.stats(session))

    async def update(
        self, memory_id: str, content: str | None, metadata: Metadata | None
    ) -> Memory:
        return await self._send(Routes.update(memory_id, content, metadata))

    async def forget(self, memory_id: str) -> None:
        await self._send(Routes.forget(memory_id))

    async def forget_session(self, session: str | None) -> int:
        return await self._send(Routes.forget_session(session))

    async def sessions(self) -> builtins.list[SessionInfo]:
        return await self._send(Routes.sessions())

    async def usage(self) -> Usage:
        return await self._send(Routes.usage())

    async def close(self) -> None:
        await self.client.aclose()
