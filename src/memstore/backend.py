"""The SDK's backend protocols: one typed method per memory operation.

``Memstore`` holds a ``Backend`` and ``AsyncMemstore`` an ``AsyncBackend``; each has two
implementations, the engine in this process (``memstore.local``) and a server over HTTP
(``memstore.remote``), as chroma's clients sit on its ``ServerAPI``. Arguments arrive as the
user gave them; validation stays in the engine (or the server) so both modes fail alike.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from memstore.models import (
    Memory,
    MemoryPage,
    RecalledMemory,
    RememberResult,
    SessionInfo,
    Stats,
    Usage,
)

SessionsArg = str | Iterable[str | None] | None
Metadata = dict[str, Any]
RememberItem = dict[str, Any]  # content, and optionally session, metadata, ttl, supersedes...
AsOf = datetime | str | float | None  # a time: datetime, ISO 8601 text or epoch seconds


class Backend(Protocol):
    """Memory operations of one account, answered synchronously."""

    def remember(
        self, content: str, session: str | None, metadata: Metadata | None, ttl: float | None
    ) -> RememberResult: ...
    def remember_many(self, items: list[RememberItem]) -> list[RememberResult]: ...
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
    ) -> list[RecalledMemory]: ...
    def get(self, memory_id: str) -> Memory: ...
    def list(
        self,
        session: SessionsArg,
        limit: int,
        cursor: str | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> MemoryPage: ...
    def invalidate(self, memory_id: str) -> Memory: ...
    def stats(self, session: str | None) -> Stats: ...
    def update(self, memory_id: str, content: str | None, metadata: Metadata | None) -> Memory: ...
    def forget(self, memory_id: str) -> None: ...
    def forget_session(self, session: str | None) -> int: ...
    def sessions(self) -> builtins.list[SessionInfo]: ...
    def usage(self) -> Usage: ...
    def close(self) -> None: ...


class AsyncBackend(Protocol):
    """The same operations, awaited; an implementation never blocks the event loop."""

    async def remember(
        self, content: str, session: str | None, metadata: Metadata | None, ttl: float | None
    ) -> RememberResult: ...
    async def remember_many(self, items: list[RememberItem]) -> list[RememberResult]: ...
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
    ) -> list[RecalledMemory]: ...
    async def get(self, memory_id: str) -> Memory: ...
    async def list(
        self,
        session: SessionsArg,
        limit: int,
        cursor: str | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> MemoryPage: ...
    async def invalidate(self, memory_id: str) -> Memory: ...
    async def stats(self, session: str | None) -> Stats: ...
    async def update(
        self, memory_id: str, content: str | None, metadata: Metadata | None
    ) -> Memory: ...
    async def forget(self, memory_id: str) -> None: ...
    async def forget_session(self, session: str | None) -> int: ...
    async def sessions(self) -> builtins.list[SessionInfo]: ...
    async def usage(self) -> Usage: ...
    async def close(self) -> None: ...
