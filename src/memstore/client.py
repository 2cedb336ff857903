"""The SDK: ``Memstore`` (and ``AsyncMemstore``) have one set of methods over two backends.

``Memstore.local(path)`` runs the engine in-process on an embedded SQLite store;
``Memstore(api_key=..., base_url=...)`` talks to a memstore server over HTTP. Both hold a
typed backend (``memstore.backend``) with one method per operation, return the same models
and raise the same errors.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memstore.backend import AsOf, AsyncBackend, Backend, Metadata, RememberItem, SessionsArg
from memstore.local import open_local_engine
from memstore.models import (
    Memory,
    MemoryPage,
    RecalledMemory,
    RememberResult,
    SessionInfo,
    Stats,
    Usage,
)
from memstore.settings import DEFAULT_BASE_URL, Settings

__all__ = ["DEFAULT_BASE_URL", "AsyncMemstore", "Memstore", "open_local_engine"]


def _remote_args(api_key: str | None, base_url: str | None) -> tuple[str | None, str]:
    settings = Settings()
    return api_key or settings.api_key, base_url or settings.base_url


def _superseding(
    content: str,
    session: str | None,
    metadata: Metadata | None,
    ttl: float | None,
    supersedes: builtins.list[str] | None,
    on_similar: str | None,
) -> builtins.list[RememberItem] | None:
    """remember() as a one-item batch when it supersedes (the batch carries those fields)."""
    if supersedes is None and on_similar is None:
        return None
    item = {"content": content, "session": session, "metadata": metadata, "ttl": ttl}
    return [{**item, "supersedes": supersedes, "on_similar": on_similar}]


def _items(items: Sequence[RememberItem | str]) -> builtins.list[RememberItem]:
    return [{"content": i} if isinstance(i, str) else dict(i) for i in items]


class Memstore:
    """Persistent memory for agents: ``Memstore(api_key=...)`` for a server,
    ``Memstore.local(path)`` for the embedded store."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        backend: Backend | None = None,
    ) -> None:
        if backend is None:
            from memstore.remote import HTTPBackend

            backend = HTTPBackend(*_remote_args(api_key, base_url), timeout, max_retries)
        self.backend = backend

    @classmethod
    def local(
        cls, path: str | Path | None = None, *, account: str | None = None, embedder: Any = None
    ) -> Memstore:
        """Open the embedded store in directory ``path`` (default ``$MEMSTORE_DATA_DIR`` or
        ``./memstore-data``) as the account named ``account`` (default ``$MEMSTORE_ACCOUNT``
        or ``default``, the CLI's and the server's first key's): no server, no network, no
        API key."""
        from memstore.local import LocalBackend

        return cls(backend=LocalBackend.open(path, embedder=embedder, account=account))

    def remember(
        self,
        content: str,
        session: str | None = None,
        metadata: Metadata | None = None,
        ttl: float | None = None,
        *,
        supersedes: builtins.list[str] | None = None,
        on_similar: str | None = None,
    ) -> Memory:
        """Store ``content``; identical content already in the session is returned instead.
        ``supersedes``: ids this memory replaces; ``on_similar``: "keep" (default),
        "supersede" or "skip" a near-duplicate current memory (docs/memory-over-time.md)."""
        batch = _superseding(content, session, metadata, ttl, supersedes, on_similar)
        if batch is not None:
            return self.backend.remember_many(batch)[0].memory
        return self.backend.remember(content, session, metadata, ttl).memory

    def remember_many(self, items: Sequence[RememberItem | str]) -> builtins.list[RememberResult]:
        """Store up to 100 memories at once (strings, or dicts with content/session/...)."""
        return self.backend.remember_many(_items(items))

    def recall(
        self,
        query: str,
        session: SessionsArg = None,
        limit: int = 5,
        min_score: float | None = None,
        filters: Metadata | None = None,
        *,
        include_superseded: bool = False,
        as_of: AsOf = None,
        collapse: bool = True,
        explain: bool = False,
    ) -> builtins.list[RecalledMemory]:
        """Memories most relevant to ``query``, best first, scored in [0, 1]. ``session`` is
        one name, a list, ``"*"`` for all, or None for the shared session. Current memories
        only, unless ``include_superseded``; ``as_of``: those current at that time.
        Near-duplicates of one session come back once, as the newest (``collapse=False``:
        every version); ``explain=True`` adds ``why`` to each result."""
        return self.backend.recall(
            query, session, limit, min_score, filters, include_superseded, as_of, collapse, explain
        )

    def get(self, id: str) -> Memory:
        return self.backend.get(id)

    def list(
        self,
        session: SessionsArg = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> MemoryPage:
        """A page of memories, newest first; pass ``page.next_cursor`` for the next one."""
        return self.backend.list(session, limit, cursor, include_superseded, as_of)

    def invalidate(self, id: str) -> Memory:
        """Mark a memory no longer current (kept, with ``superseded_at``); idempotent."""
        return self.backend.invalidate(id)

    def stats(self, session: str | None = None) -> Stats:
        """Hygiene figures of the account, or of one session."""
        return self.backend.stats(session)

    def update(
        self, id: str, content: str | None = None, metadata: Metadata | None = None
    ) -> Memory:
        """Replace a memory's content and/or metadata (metadata is replaced, not merged)."""
        return self.backend.update(id, content, metadata)

    def forget(self, id: str) -> None:
        self.backend.forget(id)

    def forget_session(self, session: str | None) -> int:
        """Forget every memory of ``session`` (None: the shared session); returns how many."""
        return self.backend.forget_session(session)

    def sessions(self) -> builtins.list[SessionInfo]:
        return self.backend.sessions()

    def usage(self) -> Usage:
        return self.backend.usage()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Memstore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMemstore:
    """The asyncio twin of Memstore: the same methods, awaited. Local mode runs the engine
    in worker threads, so it never blocks the event loop."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        backend: AsyncBackend | None = None,
    ) -> None:
        if backend is None:
            from memstore.remote import AsyncHTTPBackend

            backend = AsyncHTTPBackend(*_remote_args(api_key, base_url), timeout, max_retries)
        self.backend = backend

    @classmethod
    def local(
        cls, path: str | Path | None = None, *, account: str | None = None, embedder: Any = None
    ) -> AsyncMemstore:
        """Open the embedded store in directory ``path``, as Memstore.local does."""
        from memstore.local import AsyncLocalBackend, LocalBackend

        local = LocalBackend.open(path, embedder=embedder, account=account)
        return cls(backend=AsyncLocalBackend(local))

    async def remember(
        self,
        content: str,
        session: str | None = None,
        metadata: Metadata | None = None,
        ttl: float | None = None,
        *,
        supersedes: builtins.list[str] | None = None,
        on_similar: str | None = None,
    ) -> Memory:
        batch = _superseding(content, session, metadata, ttl, supersedes, on_similar)
        if batch is not None:
            return (await self.backend.remember_many(batch))[0].memory
        return (await self.backend.remember(content, session, metadata, ttl)).memory

    async def remember_many(
        self, items: Sequence[RememberItem | str]
    ) -> builtins.list[RememberResult]:
        return await self.backend.remember_many(_items(items))

    async def recall(
        self,
        query: str,
        session: SessionsArg = None,
        limit: int = 5,
        min_score: float | None = None,
        filters: Metadata | None = None,
        *,
        include_superseded: bool = False,
        as_of: AsOf = None,
        collapse: bool = True,
        explain: bool = False,
    ) -> builtins.list[RecalledMemory]:
        return await self.backend.recall(
            query, session, limit, min_score, filters, include_superseded, as_of, collapse, explain
        )

    async def get(self, id: str) -> Memory:
        return await self.backend.get(id)

    async def list(
        self,
        session: SessionsArg = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> MemoryPage:
        return await self.backend.list(session, limit, cursor, include_superseded, as_of)

    async def invalidate(self, id: str) -> Memory:
        return await self.backend.invalidate(id)

    async def stats(self, session: str | None = None) -> Stats:
        return await self.backend.stats(session)

    async def update(
        self, id: str, content: str | None = None, metadata: Metadata | None = None
    ) -> Memory:
        return await self.backend.update(id, content, metadata)

    async def forget(self, id: str) -> None:
        await self.backend.forget(id)

    async def forget_session(self, session: str | None) -> int:
        return await self.backend.forget_session(session)

    async def sessions(self) -> builtins.list[SessionInfo]:
        return await self.backend.sessions()

    async def usage(self) -> Usage:
        return await self.backend.usage()

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self) -> AsyncMemstore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
