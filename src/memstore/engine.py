"""MemoryEngine: every memory operation, once, for the SDK's local mode and the server."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from memstore import metrics
from memstore import validation as check
from memstore.embedding import Embedder
from memstore.errors import (
    ConflictError,
    EmbedderMismatchError,
    NotFoundError,
    QuotaExceededError,
    ValidationError,
)
from memstore.models import (
    MAX_BATCH,
    MAX_LIST_LIMIT,
    MAX_RECALL_LIMIT,
    Memory,
    MemoryPage,
    RecalledMemory,
    RememberResult,
    SessionInfo,
    Usage,
    to_datetime,
)
from memstore.ranking import (
    CONTEXT_RADIUS,
    CONTEXT_WINDOW,
    DENSE_WEIGHT,
    KEYWORD_WEIGHT,
    Context,
    context_cosines,
    fuse,
    keyword_terms,
    query_periods,
    rrf,
)
from memstore.stores.base import MemoryRow, Store

PLANS: dict[str, int | None] = {"free": 1_000, "pro": 100_000, "unlimited": None}
LOCAL_ACCOUNT = "local"
PURGE_INTERVAL_SECONDS = 60.0
CANDIDATES = 100  # per list; fusion finds evidence ranked ~50-100 by one list alone
IN_CONTEXT = 50  # the best candidates of the first fusion are read in their context


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def new_memory_id() -> str:
    return "mem_" + secrets.token_hex(12)


def month_bounds(now: float) -> tuple[str, datetime]:
    """The UTC calendar month of ``now`` as 'YYYY-MM', and when the next one starts."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return f"{moment.year:04d}-{moment.month:02d}", datetime(year, month, 1, tzinfo=UTC)


def to_memory(row: MemoryRow) -> Memory:
    return Memory(
        id=row.id,
        content=row.content,
        session=row.session or None,
        metadata=row.metadata,
        created_at=to_datetime(row.created_at),
        updated_at=to_datetime(row.updated_at),
        expires_at=to_datetime(row.expires_at),
    )


class MemoryEngine:
    """Remember, recall and manage memories of many accounts over one Store and Embedder."""

    def __init__(
        self, store: Store, embedder: Embedder, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.clock = clock
        self._check_embedder()
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

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

    # -- accounts and quotas
    def ensure_account(self, account_id: str, plan: str = "unlimited") -> None:
        if self.store.get_account(account_id) is None:
            self.store.create_account(account_id, account_id, plan, self.clock())

    def charge(self, account_id: str, ops: int = 1) -> Usage:
        """Count ``ops`` operations against the account's monthly cap, atomically."""
        account = self.store.get_account(account_id)
        plan = account.plan if account else "unlimited"
        limit = PLANS.get(plan)
        now = self.clock()
        period, resets = month_bounds(now)
        used = self.store.add_usage(account_id, period, ops, limit)
        if used is None:
            metrics.quota_refused(plan)
            retry_after = max(1, int(resets.timestamp() - now))
            raise QuotaExceededError(
                f"the {plan} plan allows {limit} operations per month; this one is used up. "
                f"It resets at {resets.isoformat()}",
                retry_after=retry_after,
            )
        return self._usage(account_id, plan, period, resets, used)

    def usage(self, account_id: str) -> Usage:
        account = self.store.get_account(account_id)
        plan = account.plan if account else "unlimited"
        period, resets = month_bounds(self.clock())
        return self._usage(
            account_id, plan, period, resets, self.store.get_usage(account_id, period)
        )

    @staticmethod
    def _usage(account_id: str, plan: str, period: str, resets: datetime, used: int) -> Usage:
        limit = PLANS.get(plan)
        return Usage(
            account=account_id,
            plan=plan,
            period=period,
            ops_used=used,
            ops_limit=limit,
            ops_remaining=None if limit is None else max(0, limit - used),
            resets_at=resets,
        )

    def _maybe_purge(self, now: float) -> None:
        if now - self._last_purge < PURGE_INTERVAL_SECONDS:
            return
        with self._purge_lock:
            if now - self._last_purge >= PURGE_INTERVAL_SECONDS:
                self._last_purge = now
                metrics.purge_ran(self.store.purge_expired(now))

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
        self._maybe_purge(now)
        return self._store_rows(account_id, rows, None)

    def _store_rows(
        self, account_id: str, rows: list[MemoryRow], vectors: np.ndarray | None
    ) -> list[RememberResult]:
        """Insert rows not already present; embed them unless ``vectors`` are given."""
        now = self.clock()
        keys = [(r.session, r.content_hash) for r in rows]
        stored = {
            k: (row, True) for k, row in self.store.find_duplicates(account_id, keys, now).items()
        }
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
        now = self.clock()
        k = max(CANDIDATES, limit * 4)
        lap = metrics.laps()
        vector = self.embedder.embed_query(query)
        lap("embedding")
        dense = self.store.dense_search(account_id, sessions, vector, k, now, where)
        lap("dense")
        keyword = self.store.keyword_search(
            account_id, sessions, keyword_terms(query), k, now, where
        )
        lap("keyword")
        # Read each candidate in its context: the memories stored around it in its session.
        first = rrf([dense, keyword], [DENSE_WEIGHT, KEYWORD_WEIGHT])
        candidates = sorted(first, key=first.__getitem__, reverse=True)[: max(IN_CONTEXT, limit)]
        around = self.store.neighbors(
            account_id, candidates, CONTEXT_RADIUS, CONTEXT_WINDOW, now, where
        )
        context = Context(around)
        pool = set(candidates).union(*(offsets.values() for offsets in around.values()))
        # Also read keyword-only hits, so that every memory that can be returned is scored
        # by its real cosine, not as unrelated.
        scored = dict(dense)
        unscored = pool.union(mid for mid, _ in keyword).difference(scored)
        fetched = self.store.vectors(account_id, list(pool | unscored))
        cosines = {**scored, **{mid: float(np.dot(v, vector)) for mid, v in fetched.items()}}
        in_pool = {mid: v for mid, v in fetched.items() if mid in pool}
        in_context = context_cosines(vector, in_pool, context)
        lap("context")
        in_period = self._created_in_periods(account_id, query, in_context, keyword, now)
        ranked = fuse(
            in_context,
            keyword,
            in_period=in_period,
            cosines=cosines,
            context=context,
            limit=limit,
            min_score=threshold,
        )
        rows = self.store.get_many(account_id, [mid for mid, _ in ranked], now)
        lap("fusion")
        return [
            RecalledMemory(**to_memory(rows[mid]).model_dump(), score=score)
            for mid, score in ranked
            if mid in rows
        ]

    def _created_in_periods(
        self,
        account_id: str,
        query: str,
        dense: list[tuple[str, float]],
        keyword: list[tuple[str, float]],
        now: float,
    ) -> list[str] | None:
        """Candidates created in a month or year the query names, in fused order."""
        periods = query_periods(query)
        if not periods:
            return None
        order = [mid for mid, _ in fuse(dense, keyword)]
        rows = self.store.get_many(account_id, order, now)
        return [
            mid
            for mid in order
            if mid in rows and any(start <= rows[mid].created_at < end for start, end in periods)
        ]

    def get(self, account_id: str, memory_id: str) -> Memory:
        row = self.store.get(account_id, check.memory_id(memory_id), self.clock())
        if row is None:
            raise NotFoundError(f"no memory {memory_id!r} in this account")
        return to_memory(row)

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
        before = check.decode_cursor(cursor)
        rows = self.store.list(account_id, sessions, limit + 1, before, self.clock())
        more = len(rows) > limit
        rows = rows[:limit]
        return MemoryPage(
            memories=[to_memory(r) for r in rows],
            next_cursor=check.encode_cursor(rows[-1].seq) if more else None,
        )

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
            self.store.purge_expired(now)
            vector = self.embedder.embed_documents([text])[0]
            changes.update(content=text, content_hash=digest)
        if meta is not None:
            changes["metadata"] = meta
        updated = replace(row, **changes)
        try:
            ok = self.store.update(updated, vector)
        except Exception as exc:  # a concurrent writer took the content first
            if "UNIQUE" in str(exc) or "unique" in str(exc):
                raise ConflictError(
                    "another memory in this session already has that content"
                ) from exc
            raise
        if not ok:
            raise NotFoundError(f"no memory {memory_id!r} in this account")
        return to_memory(updated)

    def forget(self, account_id: str, memory_id: str, *, charge: bool = True) -> None:
        memory_id = check.memory_id(memory_id)
        if self.store.get(account_id, memory_id, self.clock()) is None:
            raise NotFoundError(f"no memory {memory_id!r} in this account")
        if charge:
            self.charge(account_id)
        if not self.store.delete(account_id, memory_id):
            raise NotFoundError(f"no memory {memory_id!r} in this account")

    def forget_session(self, account_id: str, session: str | None, *, charge: bool = True) -> int:
        """Forget every memory of one session; returns how many were forgotten."""
        name = check.session(session)
        if charge:
            self.charge(account_id)
        # Expired memories are already gone as far as users can see: purge them first so
        # the count is of live memories only.
        self.store.purge_expired(self.clock())
        return self.store.delete_session(account_id, name)

    def sessions(self, account_id: str) -> list[SessionInfo]:
        return [
            SessionInfo(session=name or None, count=count)
            for name, count in self.store.sessions(account_id, self.clock())
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
