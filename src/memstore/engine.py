"""MemoryEngine: every memory operation, once, for the SDK's local mode and the server."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import replace
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np

from memstore import metrics
from memstore import validation as check
from memstore.accounts import DEFAULT_PLAN, Accounts, month_bounds
from memstore.cursors import Cursors
from memstore.embedding import Embedder, QueryCache
from memstore.errors import (
    ConflictError,
    EmbedderMismatchError,
    NotFoundError,
    ValidationError,
)
from memstore.models import (
    MAX_BATCH,
    MAX_LIST_LIMIT,
    MAX_RECALL_LIMIT,
    DayUsage,
    Memory,
    MemoryPage,
    RecalledMemory,
    RememberResult,
    SessionInfo,
    Usage,
    UsageDays,
    content_hash,
    new_memory_id,
    to_datetime,
    to_memory,
)
from memstore.recall import RecallQuery
from memstore.recall import recall as run_recall
from memstore.stores.base import DuplicateError, MemoryRow, Store

__all__ = ["MemoryEngine", "content_hash", "new_memory_id", "to_memory"]

PURGE_INTERVAL_SECONDS = 60.0
P = ParamSpec("P")
R = TypeVar("R")
# Operations charged by the engine call running in this context, as (period, ops).
_charged: ContextVar[list[tuple[str, int]] | None] = ContextVar("charged", default=None)


def refunded_on_failure(
    method: Callable[Concatenate[MemoryEngine, str, P], R],
) -> Callable[Concatenate[MemoryEngine, str, P], R]:
    """Charge only operations that succeed (issue 14, item 10): what ``method`` charged is
    counted before it runs (so concurrent clients never pass the cap, in one atomic statement)
    and given back if it raises."""

    @wraps(method)
    def wrapper(self: MemoryEngine, account_id: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        token = _charged.set([])
        try:
            return method(self, account_id, *args, **kwargs)
        except BaseException:
            self._refund(account_id)
            raise
        finally:
            _charged.reset(token)

    return wrapper


class MemoryEngine:
    """Remember, recall and manage memories of many accounts over one Store and Embedder."""

    def __init__(
        self, store: Store, embedder: Embedder, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.clock = clock
        self.accounts = Accounts(store, clock=clock)
        self._check_embedder()
        self._last_purge: dict[str, float] = {}
        self._purge_lock = threading.Lock()
        # Query vectors are cached per account: a shared cache would let one tenant time
        # whether another already searched for a text (issue 14, item 7).
        self._queries = QueryCache()
        self._cursors: Cursors | None = None

    def _cursor_codec(self) -> Cursors:
        """Cursors signed with this install's secret (created on first use, kept in the store)."""
        if self._cursors is None:
            secret = self.store.install_secret("cursor_secret", secrets.token_hex(32))
            self._cursors = Cursors(bytes.fromhex(secret))
        return self._cursors

    def _query_vector(self, account_id: str, query: str) -> np.ndarray:
        key = (account_id, query)
        vector = self._queries.get(key)
        if vector is None:
            vector = self.embedder.embed_query(query)
            self._queries.put(key, vector)
        return vector

    def _check_embedder(self) -> None:
        recorded = self.store.embedder_info()
        if recorded is None:
            self.store.set_embedder_info(self.embedder.name, self.embedder.dim)
        elif recorded != (self.embedder.name, self.embedder.dim):
            raise EmbedderMismatchError(
                f"this store was built with the embedder {recorded[0]!r} ({recorded[1]} "
                f"dimensions) but was opened with {self.embedder.name!r} ({self.embedder.dim} "
                "dimensions); open it with the same embedder, or export it and import the file "
                "into a new store (import re-embeds)"
            )

    # -- accounts and quotas (see accounts.py; kept here for the faces' convenience)
    def ensure_account(self, account_id: str, plan: str = DEFAULT_PLAN) -> None:
        """Make sure an account with exactly this id exists (tests, benchmarks)."""
        self.accounts.ensure_id(account_id, plan)

    def charge(self, account_id: str, ops: int = 1) -> Usage:
        """Count ``ops`` operations against the account's monthly cap, atomically; an
        operation that then fails gives them back (``refunded_on_failure``)."""
        usage = self.accounts.charge(account_id, ops)
        if (charged := _charged.get()) is not None:
            charged.append((usage.period, ops))
        return usage

    def _refund(self, account_id: str) -> None:
        """Give back what this operation charged (see ``refunded_on_failure``)."""
        for period, ops in _charged.get() or []:
            self.store.add_usage(account_id, period, -ops, None)
        (_charged.get() or []).clear()

    def usage(self, account_id: str) -> Usage:
        return self.accounts.usage(account_id)

    def usage_days(self, account_id: str) -> UsageDays:
        """Operations per UTC day of this month (days without any left out)."""
        period, resets = month_bounds(self.clock())
        days = self.store.usage_days(account_id, period)
        return UsageDays(
            period=period, resets_at=resets, days=[DayUsage(day=d, ops=n) for d, n in days]
        )

    def _maybe_purge(self, account_id: str, now: float) -> None:
        """Purge the account's expired memories, at most once a PURGE_INTERVAL_SECONDS."""
        if now - self._last_purge.get(account_id, 0.0) < PURGE_INTERVAL_SECONDS:
            return
        with self._purge_lock:
            if now - self._last_purge.get(account_id, 0.0) >= PURGE_INTERVAL_SECONDS:
                self._last_purge[account_id] = now
                metrics.purge_ran(self.store.purge_expired(account_id, now))

    # -- operations
    def remember(
        self,
        account_id: str,
        content: str,
        session: str | None = None,
        metadata: dict[str, Any] | None = None,
        ttl: float | None = None,
    ) -> RememberResult:
        return self.remember_many(
            account_id, [{"content": content, "session": session, "metadata": metadata, "ttl": ttl}]
        )[0]

    @refunded_on_failure
    def remember_many(
        self, account_id: str, items: list[dict[str, Any]], *, charge: bool = True
    ) -> list[RememberResult]:
        """Store up to 100 memories in one transaction; identical content in one session is
        stored once."""
        if not items:
            raise ValidationError("nothing to remember: the batch is empty")
        if len(items) > MAX_BATCH:
            raise ValidationError(f"at most {MAX_BATCH} memories per batch")
        now = self.clock()
        rows = []
        for i, item in enumerate(items):
            field = "content" if len(items) == 1 else f"items[{i}].content"
            text = check.content(item.get("content"), field)
            ttl = check.ttl(item.get("ttl"))
            rows.append(
                MemoryRow(
                    id=new_memory_id(),
                    account_id=account_id,
                    session=check.session(item.get("session")),
                    content=text,
                    content_hash=content_hash(text),
                    metadata=check.metadata(item.get("metadata")),
                    created_at=now,
                    updated_at=now,
                    expires_at=None if ttl is None else now + ttl,
                )
            )
        if charge:
            metrics.count_ops("remember", self.charge(account_id, len(rows)).plan, len(rows))
        self._maybe_purge(account_id, now)
        return self._store_rows(account_id, rows, None, refresh=True)

    @staticmethod
    def _refreshed(row: MemoryRow, newest: MemoryRow) -> MemoryRow:
        """``row`` as the newest remember of the same content asks: its ttl wins (no ttl: never
        expires), and so does its metadata when it gives any (issue 14, item 9)."""
        return replace(row, expires_at=newest.expires_at, metadata=newest.metadata or row.metadata)

    def _store_rows(
        self,
        account_id: str,
        rows: list[MemoryRow],
        vectors: np.ndarray | None,
        *,
        refresh: bool = False,
    ) -> list[RememberResult]:
        """Insert rows not already present; embed them unless ``vectors`` are given. With
        ``refresh``, a duplicate takes the ttl and metadata of the newest request for it."""
        now = self.clock()
        keys = [(r.session, r.content_hash) for r in rows]
        stored = {
            k: (row, True) for k, row in self.store.find_duplicates(account_id, keys, now).items()
        }
        if refresh:
            newest = dict(zip(keys, rows, strict=True))
            rows = [self._refreshed(r, newest[k]) for r, k in zip(rows, keys, strict=True)]
            for key, (row, _) in list(stored.items()):
                want = self._refreshed(row, newest[key])
                if (want.expires_at, want.metadata) != (row.expires_at, row.metadata):
                    want = replace(want, updated_at=now)
                    if self.store.update(want, None):
                        stored[key] = (want, True)
        fresh_at: dict[tuple[str, str], int] = {}  # first occurrence, in the batch's order
        for i, key in enumerate(keys):
            if key not in stored:
                fresh_at.setdefault(key, i)
        if fresh_at:
            fresh = [rows[i] for i in fresh_at.values()]
            if vectors is None:
                new_vectors = self.embedder.embed_documents([r.content for r in fresh])
            else:
                new_vectors = vectors[list(fresh_at.values())]
            for row, dedup in self.store.insert(fresh, new_vectors):
                stored[(row.session, row.content_hash)] = (row, dedup)
        results, seen = [], set()
        for key in keys:
            row, dedup = stored[key]
            results.append(RememberResult(memory=to_memory(row), deduplicated=dedup or key in seen))
            seen.add(key)
        return results

    @refunded_on_failure
    def recall(
        self,
        account_id: str,
        query: str,
        session: check.SessionsArg = None,
        limit: int = 5,
        min_score: float | None = None,
        filters: dict[str, Any] | None = None,
        *,
        charge: bool = True,
    ) -> list[RecalledMemory]:
        """The memories most relevant to ``query``, best first, each with a score in [0, 1]."""
        query = check.content(query, "query")
        sessions = check.sessions(session)
        limit = check.limit(limit, MAX_RECALL_LIMIT)
        threshold = check.min_score(min_score)
        where = check.filters(filters)
        if charge:
            metrics.count_ops("recall", self.charge(account_id).plan)
        # A query not in the cache is embedded inside the pipeline, beside its keyword search.
        cached = self._queries.get((account_id, query))
        return run_recall(
            self.store,
            cached if cached is not None else lambda: self._query_vector(account_id, query),
            RecallQuery(account_id, query, sessions, limit, threshold, where, self.clock()),
        )

    def get(self, account_id: str, memory_id: str) -> Memory:
        row = self.store.get(account_id, check.memory_id(memory_id), self.clock())
        if row is None:
            raise NotFoundError(f"no memory {memory_id!r} in this account")
        return to_memory(row)

    @refunded_on_failure
    def update(
        self,
        account_id: str,
        memory_id: str,
        content: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        charge: bool = True,
    ) -> Memory:
        """Replace a memory's content and/or metadata (metadata is replaced, not merged)."""
        if content is None and metadata is None:
            raise ValidationError("nothing to update: give content and/or metadata")
        text = None if content is None else check.content(content)
        meta = None if metadata is None else check.metadata(metadata)
        now = self.clock()
        row = self.store.get(account_id, check.memory_id(memory_id), now)
        if row is None:
            raise NotFoundError(f"no memory {memory_id!r} in this account")
        if charge:
            self.charge(account_id)
        vector = None
        changes: dict[str, Any] = {"updated_at": now}
        if text is not None and text != row.content:
            digest = content_hash(text)
            twin = self.store.find_duplicates(account_id, [(row.session, digest)], now)
            if twin:
                raise ConflictError(
                    f"memory {twin[(row.session, digest)].id!r} in this session already has "
                    "that content"
                )
            # An expired memory with that content may still hold its slot until purged.
            self.store.purge_expired(account_id, now, row.session)
            vector = self.embedder.embed_documents([text])[0]
            changes.update(content=text, content_hash=digest)
        if meta is not None:
            changes["metadata"] = meta
        updated = replace(row, **changes)
        try:
            ok = self.store.update(updated, vector)
        except DuplicateError as exc:  # a concurrent writer took the content first
            raise ConflictError("another memory in this session already has that content") from exc
        if not ok:
            raise NotFoundError(f"no memory {memory_id!r} in this account")
        return to_memory(updated)

    @refunded_on_failure
    def forget(self, account_id: str, memory_id: str, *, charge: bool = True) -> None:
        memory_id = check.memory_id(memory_id)
        if self.store.get(account_id, memory_id, self.clock()) is None:
            raise NotFoundError(f"no memory {memory_id!r} in this account")
        if charge:
            self.charge(account_id)
        if not self.store.delete(account_id, memory_id):
            raise NotFoundError(f"no memory {memory_id!r} in this account")

    @refunded_on_failure
    def forget_session(self, account_id: str, session: str | None, *, charge: bool = True) -> int:
        """Forget every memory of one session; returns how many were forgotten."""
        name = check.session(session)
        if charge:
            self.charge(account_id)
        # Expired memories are already gone as far as users can see: purge them first so
        # the count is of live memories only.
        self.store.purge_expired(account_id, self.clock(), name)
        deleted = self.store.delete_session(account_id, name)
        if not deleted:
            self._refund(account_id)  # nothing was forgotten: nothing is charged
        return deleted

    def sessions(self, account_id: str) -> list[SessionInfo]:
        return [
            SessionInfo(session=name or None, count=count, last_write=to_datetime(last))
            for name, count, last in self.store.sessions(account_id, self.clock())
        ]

    # -- export / import
    def import_rows(
        self, account_id: str, rows: list[MemoryRow], vectors: np.ndarray | None
    ) -> list[RememberResult]:
        """Store exported memories (new ids, original times); embeds when ``vectors`` is None."""
        now = self.clock()
        keep = [i for i, r in enumerate(rows) if r.expires_at is None or r.expires_at > now]
        if not keep:
            return []
        live = [replace(rows[i], id=new_memory_id(), account_id=account_id) for i in keep]
        return self._store_rows(account_id, live, None if vectors is None else vectors[keep])

    # last: a method named "list" would shadow the builtin in the annotations below it
    def list(
        self,
        account_id: str,
        session: check.SessionsArg = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> MemoryPage:
        """Memories newest first, a page at a time."""
        sessions = check.sessions(session)
        limit = check.limit(limit, MAX_LIST_LIMIT)
        codec = self._cursor_codec()
        before = codec.decode(account_id, cursor)
        rows = self.store.list_memories(account_id, sessions, limit + 1, before, self.clock())
        more = len(rows) > limit
        rows = rows[:limit]
        return MemoryPage(
            memories=[to_memory(r) for r in rows],
            next_cursor=codec.encode(account_id, rows[-1].seq) if more else None,
        )
