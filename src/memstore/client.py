"""The SDK: ``Memstore`` (and ``AsyncMemstore``) have one set of methods over two transports.

``Memstore.local(path)`` runs the engine in-process on an embedded SQLite store;
``Memstore(api_key=..., base_url=...)`` talks to a memstore server over HTTP. Both return
the same models and raise the same errors, because each method is one named operation
that a transport either runs on the engine or sends as an HTTP request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from memstore.models import Memory, MemoryPage, RecalledMemory, RememberResult, SessionInfo, Usage
from memstore.settings import DEFAULT_BASE_URL, Settings

__all__ = ["DEFAULT_BASE_URL", "AsyncMemstore", "Memstore", "open_local_engine"]
SessionsArg = str | Iterable[str | None] | None


class Transport(Protocol):
    def call(self, op: str, **kw: Any) -> Any: ...
    def close(self) -> None: ...


class LocalTransport:
    """Runs operations on a MemoryEngine in this process, as one account."""

    def __init__(self, engine: Any, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id

    def call(self, op: str, **kw: Any) -> Any:
        return getattr(self.engine, op)(self.account_id, **kw)

    def close(self) -> None:
        self.engine.store.close()


class AsyncLocalTransport:
    """The local transport for AsyncMemstore: engine calls run in a worker thread."""

    def __init__(self, local: LocalTransport) -> None:
        self.local = local

    async def call(self, op: str, **kw: Any) -> Any:
        return await asyncio.to_thread(self.local.call, op, **kw)

    async def close(self) -> None:
        self.local.close()


def open_local_engine(path: str | Path, embedder: Any = None) -> Any:
    """A MemoryEngine over the SQLite store in directory ``path``."""
    from memstore.embedding import load_embedder
    from memstore.engine import MemoryEngine
    from memstore.stores.sqlite import SQLiteStore

    store = SQLiteStore.open_dir(path)
    try:
        if embedder is None:
            settings = Settings()
            embedder = load_embedder(settings.embedder, handles=settings.embed_handles)
        return MemoryEngine(store, embedder)
    except Exception:
        store.close()
        raise


def _local(path: str | Path | None, embedder: Any, account: str | None) -> LocalTransport:
    settings = Settings()
    engine = open_local_engine(path or settings.data_dir, embedder)
    return LocalTransport(engine, engine.accounts.ensure(account or settings.account).id)


def _remote_args(api_key: str | None, base_url: str | None) -> tuple[str | None, str]:
    settings = Settings()
    return api_key or settings.api_key, base_url or settings.base_url


def _item(item: dict[str, Any] | str) -> dict[str, Any]:
    return {"content": item} if isinstance(item, str) else dict(item)


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
        transport: Transport | None = None,
    ) -> None:
        if transport is None:
            from memstore.remote import HTTPTransport

            key, url = _remote_args(api_key, base_url)
            transport = HTTPTransport(key, url, timeout, max_retries)
        self._transport = transport

    @classmethod
    def local(
        cls, path: str | Path | None = None, *, account: str | None = None, embedder: Any = None
    ) -> Memstore:
        """Open the embedded store in directory ``path`` (default ``$MEMSTORE_DATA_DIR`` or
        ``./memstore-data``) as ``account`` (by name; default ``$MEMSTORE_ACCOUNT`` or
        ``default``, the account of the CLI and of the server's first key): no server, no
        network, no API key."""
        return cls(transport=_local(path, embedder, account))

    def remember(
        self,
        content: str,
        session: str | None = None,
        metadata: dict[str, Any] | None = None,
        ttl: float | None = None,
    ) -> Memory:
        """Store ``content``; identical content already in the session is returned instead."""
        item = {"content": content, "session": session, "metadata": metadata, "ttl": ttl}
        return self._transport.call("remember_many", items=[item])[0].memory

    def remember_many(self, items: list[dict[str, Any] | str]) -> list[RememberResult]:
        """Store up to 100 memories at once (strings, or dicts with content/session/...)."""
        return self._transport.call("remember_many", items=[_item(i) for i in items])

    def recall(
        self,
        query: str,
        session: SessionsArg = None,
        limit: int = 5,
        min_score: float | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[RecalledMemory]:
        """Memories most relevant to ``query``, best first, scored in [0, 1]. ``session`` is
        one name, a list, ``"*"`` for all, or None for the shared session."""
        return self._transport.call(
            "recall",
            query=query,
            session=session,
            limit=limit,
            min_score=min_score,
            filters=filters,
        )

    def get(self, id: str) -> Memory:
        return self._transport.call("get", memory_id=id)

    def list(
        self, session: SessionsArg = None, limit: int = 50, cursor: str | None = None
    ) -> MemoryPage:
        """A page of memories, newest first; pass ``page.next_cursor`` for the next one."""
        return self._transport.call("list", session=session, limit=limit, cursor=cursor)

    def update(
        self, id: str, content: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Memory:
        return self._transport.call("update", memory_id=id, content=content, metadata=metadata)

    def forget(self, id: str) -> None:
        self._transport.call("forget", memory_id=id)

    def forget_session(self, session: str | None) -> int:
        """Forget every memory of ``session`` (None: the shared session); returns how many."""
        return self._transport.call("forget_session", session=session)

    def sessions(self) -> list[SessionInfo]:
        return self._transport.call("sessions")

    def usage(self) -> Usage:
        return self._transport.call("usage")

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Memstore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMemstore:
    """The asyncio twin of Memstore: the same methods, awaited."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        transport: Any = None,
    ) -> None:
        if transport is None:
            from memstore.remote import AsyncHTTPTransport

            key, url = _remote_args(api_key, base_url)
            transport = AsyncHTTPTransport(key, url, timeout, max_retries)
        self._transport = transport

    @classmethod
    def local(
        cls, path: str | Path | None = None, *, account: str | None = None, embedder: Any = None
    ) -> AsyncMemstore:
        return cls(transport=AsyncLocalTransport(_local(path, embedder, account)))

    async def remember(
        self,
        content: str,
        session: str | None = None,
        metadata: dict[str, Any] | None = None,
        ttl: float | None = None,
    ) -> Memory:
        item = {"content": content, "session": session, "metadata": metadata, "ttl": ttl}
        return (await self._transport.call("remember_many", items=[item]))[0].memory

    async def remember_many(self, items: list[dict[str, Any] | str]) -> list[RememberResult]:
        return await self._transport.call("remember_many", items=[_item(i) for i in items])

    async def recall(
        self,
        query: str,
        session: SessionsArg = None,
        limit: int = 5,
        min_score: float | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[RecalledMemory]:
        return await self._transport.call(
            "recall",
            query=query,
            session=session,
            limit=limit,
            min_score=min_score,
            filters=filters,
        )

    async def get(self, id: str) -> Memory:
        return await self._transport.call("get", memory_id=id)

    async def list(
        self, session: SessionsArg = None, limit: int = 50, cursor: str | None = None
    ) -> MemoryPage:
        return await self._transport.call("list", session=session, limit=limit, cursor=cursor)

    async def update(
        self, id: str, content: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Memory:
        return await self._transport.call(
            "update", memory_id=id, content=content, metadata=metadata
        )

    async def forget(self, id: str) -> None:
        await self._transport.call("forget", memory_id=id)

    async def forget_session(self, session: str | None) -> int:
        return await self._transport.call("forget_session", session=session)

    async def sessions(self) -> list[SessionInfo]:
        return await self._transport.call("sessions")

    async def usage(self) -> Usage:
        return await self._transport.call("usage")

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncMemstore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
