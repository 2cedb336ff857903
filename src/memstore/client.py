"""The SDK: ``Memstore`` has one set of methods over two transports.

``Memstore.local(path)`` runs the engine in-process on an embedded SQLite store;
``Memstore(api_key=..., base_url=...)`` talks to a memstore server over HTTP. Both return
the same models and raise the same errors.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from memstore.models import Memory, MemoryPage, RecalledMemory, RememberResult, SessionInfo, Usage

DEFAULT_BASE_URL = "http://127.0.0.1:8420"
SessionsArg = str | Iterable[str | None] | None


class Transport(Protocol):
    """What a Memstore needs from its way of reaching the engine."""

    def remember_many(self, items: list[dict[str, Any]]) -> list[RememberResult]: ...
    def recall(
        self,
        query: str,
        session: SessionsArg,
        limit: int,
        min_score: float | None,
        filters: dict[str, Any] | None,
    ) -> list[RecalledMemory]: ...
    def get(self, memory_id: str) -> Memory: ...
    def list(self, session: SessionsArg, limit: int, cursor: str | None) -> MemoryPage: ...
    def update(
        self, memory_id: str, content: str | None, metadata: dict[str, Any] | None
    ) -> Memory: ...
    def forget(self, memory_id: str) -> None: ...
    def forget_session(self, session: str | None) -> int: ...
    def sessions(self) -> list[SessionInfo]: ...
    def usage(self) -> Usage: ...
    def close(self) -> None: ...


class LocalTransport:
    """Calls a MemoryEngine in this process, as the single local account."""

    def __init__(self, engine: Any, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id

    def remember_many(self, items: list[dict[str, Any]]) -> list[RememberResult]:
        return self.engine.remember_many(self.account_id, items)

    def recall(self, query, session, limit, min_score, filters) -> list[RecalledMemory]:  # type: ignore[no-untyped-def]
        return self.engine.recall(self.account_id, query, session, limit, min_score, filters)

    def get(self, memory_id: str) -> Memory:
        return self.engine.get(self.account_id, memory_id)

    def list(self, session: SessionsArg, limit: int, cursor: str | None) -> MemoryPage:
        return self.engine.list(self.account_id, session, limit, cursor)

    def update(
        self, memory_id: str, content: str | None, metadata: dict[str, Any] | None
    ) -> Memory:
        return self.engine.update(self.account_id, memory_id, content, metadata)

    def forget(self, memory_id: str) -> None:
        self.engine.forget(self.account_id, memory_id)

    def forget_session(self, session: str | None) -> int:
        return self.engine.forget_session(self.account_id, session)

    def sessions(self) -> list[SessionInfo]:
        return self.engine.sessions(self.account_id)

    def usage(self) -> Usage:
        return self.engine.usage(self.account_id)

    def close(self) -> None:
        self.engine.store.close()


def open_local_engine(path: str | Path, embedder: Any = None) -> Any:
    """A MemoryEngine over the SQLite store in directory ``path``."""
    from memstore.embedding import load_embedder
    from memstore.engine import LOCAL_ACCOUNT, MemoryEngine
    from memstore.stores.sqlite import SQLiteStore

    store = SQLiteStore.open_dir(path)
    try:
        engine = MemoryEngine(store, embedder or load_embedder())
    except Exception:
        store.close()
        raise
    engine.ensure_account(LOCAL_ACCOUNT)
    return engine


class Memstore:
    """Persistent memory for agents. See the README for both modes."""

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

            transport = HTTPTransport(
                api_key=api_key or os.environ.get("MEMSTORE_API_KEY"),
                base_url=base_url or os.environ.get("MEMSTORE_BASE_URL") or DEFAULT_BASE_URL,
                timeout=timeout,
                max_retries=max_retries,
            )
        self._transport = transport

    @classmethod
    def local(cls, path: str | Path | None = None, *, embedder: Any = None) -> Memstore:
        """Open an embedded store in directory ``path`` (default ``$MEMSTORE_DATA_DIR`` or
        ``./memstore-data``): no server, no network, no API key."""
        from memstore.engine import LOCAL_ACCOUNT

        path = path or os.environ.get("MEMSTORE_DATA_DIR") or "memstore-data"
        return cls(transport=LocalTransport(open_local_engine(path, embedder), LOCAL_ACCOUNT))

    def remember(
        self,
        content: str,
        session: str | None = None,
        metadata: dict[str, Any] | None = None,
        ttl: float | None = None,
    ) -> Memory:
        """Store ``content``; identical content already in the session is returned instead."""
        item = {"content": content, "session": session, "metadata": metadata, "ttl": ttl}
        return self._transport.remember_many([item])[0].memory

    def remember_many(self, items: list[dict[str, Any] | str]) -> list[RememberResult]:
        """Store up to 100 memories at once (dicts with content/session/metadata/ttl, or str)."""
        return self._transport.remember_many(
            [{"content": i} if isinstance(i, str) else dict(i) for i in items]
        )

    def recall(
        self,
        query: str,
        session: SessionsArg = None,
        limit: int = 5,
        min_score: float | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[RecalledMemory]:
        """Memories most relevant to ``query``, best first. ``session`` is one name, a list,
        ``"*"`` for all sessions, or None for the shared session."""
        return self._transport.recall(query, session, limit, min_score, filters)

    def get(self, id: str) -> Memory:
        return self._transport.get(id)

    def list(
        self, session: SessionsArg = None, limit: int = 50, cursor: str | None = None
    ) -> MemoryPage:
        return self._transport.list(session, limit, cursor)

    def update(
        self, id: str, content: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Memory:
        return self._transport.update(id, content, metadata)

    def forget(self, id: str) -> None:
        self._transport.forget(id)

    def forget_session(self, session: str | None) -> int:
        return self._transport.forget_session(session)

    def sessions(self) -> list[SessionInfo]:
        return self._transport.sessions()

    def usage(self) -> Usage:
        return self._transport.usage()

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Memstore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
