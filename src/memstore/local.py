"""The in-process backends: the SDK's local mode runs the engine itself, as one account.

``AsyncLocalBackend`` runs each engine call in a worker thread (``asyncio.to_thread``), so
embedding and SQLite never block the event loop. The engine, numpy and the model are
imported only when a local backend is opened.
"""

from __future__ import annotations

import asyncio
import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memstore.backend import AsOf, Metadata, RememberItem, SessionsArg
from memstore.models import (
    Memory,
    MemoryPage,
    RecalledMemory,
    RememberResult,
    SessionInfo,
    Stats,
    Usage,
)
from memstore.settings import Settings

if TYPE_CHECKING:
    from memstore.engine import MemoryEngine


def open_local_engine(path: str | Path, embedder: Any = None) -> MemoryEngine:
    """A MemoryEngine over the SQLite store in directory ``path`` (the embedder named by
    the settings unless one is given)."""
    from memstore.embedding import load_embedder
    from memstore.engine import MemoryEngine
    from memstore.stores.sqlite import SQLiteStore

    store = SQLiteStore.open_dir(path)
    try:
        if embedder is None:
            settings = Settings()
            embedder = load_embedder(
                settings.embedder, handles=settings.embed_handles, threads=settings.embed_threads
            )
        return MemoryEngine(store, embedder)
    except Exception:
        store.close()
        raise


class LocalBackend:
    """Runs every operation on a MemoryEngine in this process, as ``account_id``."""

    def __init__(self, engine: MemoryEngine, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        embedder: Any = None,
        account: str | None = None,
    ) -> LocalBackend:
        """Open the store in ``path`` (default ``$MEMSTORE_DATA_DIR`` or ./memstore-data) as
        the account named ``account`` (default ``$MEMSTORE_ACCOUNT`` or ``default``, the
        account of the CLI and of the server's first key), creating it if needed."""
        settings = Settings()
        engine = open_local_engine(path or settings.data_dir, embedder)
        try:
            account_id = engine.accounts.ensure(account or settings.account).id
        except Exception:
            engine.store.close()
            raise
        return cls(engine, account_id)

    def remember(
        self, content: str, session: str | None, metadata: Metadata | None, ttl: float | None
    ) -> RememberResult:
        return self.engine.remember(self.account_id, content, session, metadata, ttl)

    def remember_many(self, items: list[RememberItem]) -> list[RememberResult]:
        return self.engine.remember_many(self.account_id, items)

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
        return self.engine.recall(
            self.account_id,
            query,
            session,
            limit,
            min_score,
            filters,
            include_superseded=include_superseded,
            as_of=as_of,
            collapse=collapse,
            explain=explain,
        )

    def get(self, memory_id: str) -> Memory:
        return self.engine.get(self.account_id, memory_id)

    def list(
        self,
        session: SessionsArg,
        limit: int,
        cursor: str | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> MemoryPage:
        return self.engine.list(
            self.account_id,
            session,
            limit,
            cursor,
            include_superseded=include_superseded,
            as_of=as_of,
        )

    def invalidate(self, memory_id: str) -> Memory:
        return self.engine.invalidate(self.account_id, memory_id)

    def stats(self, session: str | None) -> Stats:
        return self.engine.stats(self.account_id, session)

    def update(self, memory_id: str, content: str | None, metadata: Metadata | None) -> Memory:
        return self.engine.update(self.account_id, memory_id, content, metadata)

    def forget(self, memory_id: str) -> None:
        self.engine.forget(self.account_id, memory_id)

    def forget_session(self, session: str | None) -> int:
        return self.engine.forget_session(self.account_id, session)

    def sessions(self) -> builtins.list[SessionInfo]:
        return self.engine.sessions(self.account_id)

    def usage(self) -> Usage:
        return self.engine.usage(self.account_id)

    def close(self) -> None:
        self.engine.close()


class AsyncLocalBackend:
    """The local backend for AsyncMemstore: each call runs in a worker thread."""

    def __init__(self, local: LocalBackend) -> None:
        self.local = local

    async def remember(
        self, content: str, session: str | None, metadata: Metadata | None, ttl: float | None
    ) -> RememberResult:
        return await asyncio.to_thread(self.local.remember, content, session, metadata, ttl)

    async def remember_many(self, items: list[RememberItem]) -> list[RememberResult]:
        return await asyncio.to_thread(self.local.remember_many, items)

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
        return await asyncio.to_thread(
            self.local.recall,
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

    async def get(self, memory_id: str) -> Memory:
        return await asyncio.to_thread(self.local.get, memory_id)

    async def list(
        self,
        session: SessionsArg,
        limit: int,
        cursor: str | None,
        include_superseded: bool = False,
        as_of: AsOf = None,
    ) -> MemoryPage:
        return await asyncio.to_thread(
            self.local.list, session, limit, cursor, include_superseded, as_of
        )

    async def invalidate(self, memory_id: str) -> Memory:
        return await asyncio.to_thread(self.local.invalidate, memory_id)

    async def stats(self, session: str | None) -> Stats:
        return await asyncio.to_thread(self.local.stats, session)

    async def update(
        self, memory_id: str, content: str | None, metadata: Metadata | None
    ) -> Memory:
        return await asyncio.to_thread(self.local.update, memory_id, content, metadata)

    async def forget(self, memory_id: str) -> None:
        await asyncio.to_thread(self.local.forget, memory_id)

    async def forget_session(self, session: str | None) -> int:
        return await asyncio.to_thread(self.local.forget_session, session)

    async def sessions(self) -> builtins.list[SessionInfo]:
        return await asyncio.to_thread(self.local.sessions)

    async def usage(self) -> Usage:
        return await asyncio.to_thread(self.local.usage)

    async def close(self) -> None:
        await asyncio.to_thread(self.local.close)
