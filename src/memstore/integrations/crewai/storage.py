"""``MemstoreStorage``: crewai's ``StorageBackend`` over a Memstore, for
``crewai.Memory(storage=MemstoreStorage(ms))`` (CrewAI's own LLM analysis and embedder)."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import numpy as np
from crewai.memory.types import MemoryRecord, ScopeInfo

from memstore.backend import RememberItem
from memstore.client import Memstore
from memstore.errors import ConflictError, NotFoundError
from memstore.integrations.crewai.listing import MAX_SESSIONS_PER_CALL, memories_in
from memstore.integrations.crewai.records import category_counts, scope_info
from memstore.models import MAX_BATCH, MAX_METADATA_BYTES, Memory

__all__ = ["MAX_SESSIONS_PER_LIST", "MemstoreStorage"]

MAX_SESSIONS_PER_LIST = MAX_SESSIONS_PER_CALL  # the name this module has always exported

_KEY = "crewai."
P = ParamSpec("P")
R = TypeVar("R")


_VECTOR_TYPES = {"f64": "<f8", "f32": "<f4", "f16": "<f2"}


def _pack_vector(vector: list[float], budget: int) -> str:
    """The most precise encoding that fits the metadata budget: float64 (exact) for small
    vectors, float32, else float16 (≈1e-3 precision, plenty for cosine ranking; crewai's
    default 3072 dimensions take 8 KB)."""
    for kind, dtype in _VECTOR_TYPES.items():
        packed = f"{kind}:" + base64.b64encode(np.asarray(vector, dtype=dtype).tobytes()).decode()
        if len(packed) <= budget:
            break
    return packed


def _unpack_vector(text: str) -> list[float]:
    kind, data = text.split(":", 1)
    vector: list[float] = (
        np.frombuffer(base64.b64decode(data), dtype=_VECTOR_TYPES[kind]).astype(float).tolist()
    )
    return vector


def _in_scope(scope: str, prefix: str | None) -> bool:
    if not prefix or prefix == "/":
        return True
    p = prefix.rstrip("/")
    return scope == p or scope.startswith(p + "/")


def _in_thread(method: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``method`` awaited in a worker thread, so it never blocks the event loop."""

    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, *args, **kwargs)

    return run


def _norm_scope(scope: str | None) -> str:
    scope = "/" + (scope or "").strip("/")
    return scope


class MemstoreStorage:
    """crewai's ``StorageBackend`` over a Memstore, for ``Memory(storage=MemstoreStorage(ms))``.

    Each scope is one memstore session (``session_prefix + scope``); a record's text is the
    memory's content (so ``ms.recall`` and ``memstore recall`` find it too) and its other
    fields, including crewai's embedding, live in the memory's metadata. ``search`` ranks
    by cosine between crewai's query embedding and the stored embeddings of the records in
    scope: crewai hands us vectors from its own embedder, never the query text, so memstore's
    text ranking cannot answer it. That costs one listing of the scope per search, fine for
    a crew's memory (thousands of records) and identical locally and over HTTP.
    """

    def __init__(self, memstore: Memstore, *, session_prefix: str = "crewai:") -> None:
        self.memstore = memstore
        self.session_prefix = session_prefix
        self._ids: dict[str, str] = {}  # crewai record id -> memstore memory id
        self._lock = threading.Lock()

    # -- mapping between records and memories
    def _session(self, scope: str) -> str:
        return self.session_prefix + _norm_scope(scope)

    def _metadata(self, record: MemoryRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {
            _KEY + "id": record.id,
            _KEY + "categories": json.dumps(record.categories),
            _KEY + "metadata": json.dumps(record.metadata, default=str),
            _KEY + "importance": record.importance,
            _KEY + "created_at": record.created_at.isoformat(),
            _KEY + "last_accessed": record.last_accessed.isoformat(),
            _KEY + "private": record.private,
        }
        if record.source is not None:
            meta[_KEY + "source"] = record.source
        if record.embedding is not None:
            used = sum(len(k) + len(str(v)) for k, v in meta.items())
            budget = MAX_METADATA_BYTES - used - len(_KEY + "embedding")
            meta[_KEY + "embedding"] = _pack_vector(record.embedding, budget)
        return meta

    def _record(self, memory: Memory) -> MemoryRecord:
        meta = memory.metadata
        packed = meta.get(_KEY + "embedding")
        return MemoryRecord(
            id=str(meta[_KEY + "id"]),
            content=memory.content,
            scope=(memory.session or "")[len(self.session_prefix) :] or "/",
            categories=json.loads(str(meta[_KEY + "categories"])),
            metadata=json.loads(str(meta[_KEY + "metadata"])),
            importance=float(meta[_KEY + "importance"] or 0.0),
            created_at=datetime.fromisoformat(str(meta[_KEY + "created_at"])),
            last_accessed=datetime.fromisoformat(str(meta[_KEY + "last_accessed"])),
            embedding=_unpack_vector(str(packed)) if packed else None,
            source=meta.get(_KEY + "source"),
            private=bool(meta.get(_KEY + "private", False)),
        )

    def _sessions(self, scope_prefix: str | None) -> list[tuple[str, int]]:
        """(session, count) of every non-empty scope under ``scope_prefix``."""
        out = []
        for info in self.memstore.sessions():
            name = info.session or ""
            if name.startswith(self.session_prefix) and _in_scope(
                name[len(self.session_prefix) :], scope_prefix
            ):
                out.append((name, info.count))
        return out

    def _scan(self, scope_prefix: str | None) -> Iterator[tuple[Memory, MemoryRecord]]:
        names = [name for name, _ in self._sessions(scope_prefix)]
        for memory in memories_in(self.memstore, names):
            if _KEY + "id" in memory.metadata:
                record = self._record(memory)
                with self._lock:
                    self._ids[record.id] = memory.id
                yield memory, record

    def _locate(self, record_id: str) -> Memory | None:
        with self._lock:
            memory_id = self._ids.get(record_id)
        if memory_id is not None:
            try:
                memory = self.memstore.get(memory_id)
                if memory.metadata.get(_KEY + "id") == record_id:
                    return memory
            except NotFoundError:
                pass  # forgotten elsewhere; fall back to a scan
        for memory, record in self._scan(None):
            if record.id == record_id:
                return memory
        return None

    @staticmethod
    def _matches(
        record: MemoryRecord,
        categories: list[str] | None,
        metadata_filter: dict[str, Any] | None,
    ) -> bool:
        if categories and not set(categories) & set(record.categories):
            return False
        return not metadata_filter or all(
            record.metadata.get(k) == v for k, v in metadata_filter.items()
        )

    # -- the protocol
    def save(self, records: list[MemoryRecord]) -> None:
        """Store records; identical content in one scope is kept once, with the newest
        record's id and fields (memstore's dedup)."""
        for start in range(0, len(records), MAX_BATCH):
            batch = records[start : start + MAX_BATCH]
            items: list[RememberItem] = [
                {"content": r.content, "session": self._session(r.scope), "metadata": m}
                for r, m in ((r, self._metadata(r)) for r in batch)
            ]
            results = self.memstore.remember_many(items)
            for record, item, result in zip(batch, items, results, strict=True):
                if result.deduplicated:
                    self.memstore.update(result.memory.id, metadata=item["metadata"])
                with self._lock:
                    self._ids[record.id] = result.memory.id

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        query = np.asarray(query_embedding, dtype=float)
        query = query / (np.linalg.norm(query) or 1.0)
        scored = []
        for _, record in self._scan(scope_prefix):
            if record.embedding is None or not self._matches(record, categories, metadata_filter):
                continue
            vector = np.asarray(record.embedding, dtype=float)
            if vector.shape != query.shape:
                continue  # written by another embedder; not comparable
            score = float(np.dot(query, vector) / (np.linalg.norm(vector) or 1.0))
            score = min(1.0, max(0.0, score))
            if score >= min_score:
                scored.append((record, score))
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return scored[:limit]

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        if not (categories or record_ids or older_than or metadata_filter):
            names = [name for name, _ in self._sessions(scope_prefix)]
            return sum(self.memstore.forget_session(name) for name in names)
        doomed = [
            memory.id
            for memory, record in self._scan(scope_prefix)
            if (not record_ids or record.id in record_ids)
            and (not older_than or record.created_at < older_than)
            and self._matches(record, categories, metadata_filter)
        ]
        for memory_id in doomed:
            self.memstore.forget(memory_id)
        return len(doomed)

    def update(self, record: MemoryRecord) -> None:
        """Replace the record with ``record.id`` (stored anew if it is missing)."""
        memory = self._locate(record.id)
        if memory is not None and memory.session == self._session(record.scope):
            content = None if record.content == memory.content else record.content
            try:
                self.memstore.update(memory.id, content=content, metadata=self._metadata(record))
                return
            except ConflictError:
                pass  # another record in the scope has this text: merge into it below
        if memory is not None:
            self.memstore.forget(memory.id)
        self.save([record])

    def get_record(self, record_id: str) -> MemoryRecord | None:
        memory = self._locate(record_id)
        return None if memory is None else self._record(memory)

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        records = [record for _, record in self._scan(scope_prefix)]
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[offset : offset + limit]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        records = [record for _, record in self._scan(scope)]
        return scope_info(scope, records, self.list_scopes(scope))

    def list_scopes(self, parent: str = "/") -> list[str]:
        base = _norm_scope(parent).rstrip("/")
        children = set()
        for name, _ in self._sessions(parent):
            scope = name[len(self.session_prefix) :]
            if scope.startswith(base + "/") and scope != base:
                head = scope[len(base) + 1 :].split("/")[0]
                if head:
                    children.add(f"{base}/{head}")
        return sorted(children)

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        return category_counts(record for _, record in self._scan(scope_prefix))

    def count(self, scope_prefix: str | None = None) -> int:
        return sum(count for _, count in self._sessions(scope_prefix))

    def reset(self, scope_prefix: str | None = None) -> None:
        self.delete(scope_prefix=scope_prefix)

    # the protocol's async methods: the same calls in a worker thread
    asave = _in_thread(save)
    asearch = _in_thread(search)
    adelete = _in_thread(delete)
