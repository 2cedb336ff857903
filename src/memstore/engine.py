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
from memstore.current import current_view
from memstore.cursors import Cursors
from memstore.embedding import OPERATIONS, Embedder, QueryCache
from memstore.errors import (
    ConflictError,
    EmbedderMismatchError,
    NotFoundError,
    ValidationError,
)
from memstore.hygiene import RecallHits, account_stats
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
    Stats,
    Usage,
    UsageDays,
    content_hash,
    new_memory_id,
    to_datetime,
    to_memory,
)
from memstore.recall import RecallQuery
from memstore.recall import recall as run_recall
from memstore.similar import similar_current
from memstore.stores.base import DuplicateError, MemoryRow, Store

__all__ = ["MemoryEngine", "content_hash", "new_memory_id", "to_memory"]

PURGE_INTERVAL_SECONDS = 60.0
MICROSECOND = 1e-6
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


def embedding_operation(
    method: Callable[Concatenate[MemoryEngine, str, P], R],
) -> Callable[Concatenate[MemoryEngine, str, P], R]:
    """Count ``method`` among the operations under way (``embedding.OPERATIONS``): the
    embedder gives a text both cores only while one runs."""

    @wraps(method)
    def wrapper(self: MemoryEngine, account_id: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with OPERATIONS.running():
            return method(self, account_id, *args, **kwargs)

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
        self.hits = RecallHits(store, clock)  # "never recalled" (hygiene.py)

    def close(self) -> None:
        """Write the pending recall hits and close the store."""
        self.hits.flush()
        self.store.close()

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
        *,
        supersedes: list[str] | None = None,
        on_similar: str | None = None,
    ) -> RememberResult:
        item: dict[str, Any] = {
            "content": content,
            "session": session,
            "metadata": metadata,
            "ttl": ttl,
        }
        if supersedes is not None or on_similar is not None:
            item.update(supersedes=supersedes, on_similar=on_similar)
        return self.remember_many(account_id, [item])[0]

    @embedding_operation
    @refunded_on_failure
    def remember_many(
        self, account_id: str, items: list[dict[str, Any]], *, charge: bool = True
    ) -> list[RememberResult]:
        """Store up to 100 memories in one transaction; identical content in one session is
        stored once. An item may also carry ``supersedes`` (ids) and ``on_similar``
        (docs/memory-over-time.md)."""
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
        plans = [
            (check.supersedes(item.get("supersedes")), check.on_similar(item.get("on_similar")))
            for item in items
        ]
        self._check_supersedes(account_id, [mid for ids, _ in plans for mid in ids], now)
        if charge:
            metrics.count_ops("remember", self.charge(account_id, len(rows)).plan, len(rows))
        self._maybe_purge(account_id, now)
        return self._remember_superseding(account_id, rows, plans, now)

    def _check_supersedes(self, account_id: str, ids: list[str], now: float) -> None:
        """NotFoundError, before anything is stored, unless every id is a live memory of
        this account."""
        known = self.store.get_many(account_id, ids, now) if ids else {}
        missing = [mid for mid in ids if mid not in known]
        if missing:
            raise NotFoundError(f"no memory {missing[0]!r} in this account (in supersedes)")

    def _remember_superseding(
        self, account_id: str, rows: list[MemoryRow], plans: list[tuple[list[str], str]], now: float
    ) -> list[RememberResult]:
        """Store ``rows`` and apply each one's (supersedes, on_similar). A duplicate of a
        superseded memory makes it current again."""
        vectors = None
        similar: list[list[str]] = [[] for _ in rows]
        if any(how != "keep" for _, how in plans):
            vectors = self.embedder.embed_documents([r.content for r in rows])
            for i, (row, (_, how)) in enumerate(zip(rows, plans, strict=True)):
                if how != "keep":
                    found = similar_current(self.store, account_id, row.session, vectors[i], now)
                    similar[i] = [mid for mid, _ in found]
        kept = [i for i, (_, how) in enumerate(plans) if how != "skip" or not similar[i]]
        stored = (
            self._store_rows(
                account_id,
                [rows[i] for i in kept],
                None if vectors is None else vectors[kept],
                refresh=True,
            )
            if kept
            else []
        )
        results = dict(zip(kept, stored, strict=True))
        for i, (ids, how) in enumerate(plans):
            if i not in results:  # on_similar="skip": its nearest current twin stands for it
                results[i] = RememberResult(
                    memory=self.get(account_id, similar[i][0]), deduplicated=True
                )
                continue
            mine = results[i].memory
            targets = [
                m for m in [*ids, *(similar[i] if how == "supersede" else [])] if m != mine.id
            ]
            if targets:
                self.store.set_superseded(account_id, targets, now, mine.id)
            if mine.superseded_at is not None:
                self.store.set_superseded(account_id, [mine.id], None, None)
                current = mine.model_copy(update={"superseded_at": None, "superseded_by": None})
                results[i] = RememberResult(memory=current, deduplicated=results[i].deduplicated)
        return [results[i] for i in range(len(rows))]

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
            # per memory, the batch's requests folded in order: the last ttl, and the last
            # metadata given (a later item without metadata keeps an earlier item's)
            newest: dict[tuple[str, str], MemoryRow] = {}
            for key, row in zip(keys, rows, strict=True):
                newest[key] = self._refreshed(newest[key], row) if key in newest else row
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

    @embedding_operation
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
        include_superseded: bool = False,
        as_of: Any = None,
        collapse: bool = True,
        explain: bool = False,
    ) -> list[RecalledMemory]:
        """The memories most relevant to ``query``, best first, each with a score in [0, 1];
        current ones only unless ``include_superseded``, or those current at ``as_of``;
        near-duplicates shown once unless ``collapse`` is off; ``explain`` adds ``why``."""
        query = check.content(query, "query")
        sessions = check.sessions(session)
        limit = check.limit(limit, MAX_RECALL_LIMIT)
        threshold = check.min_score(min_score)
        where = check.filters(filters)
        every, when = _over_time(include_superseded, as_of)
        if charge:
            metrics.count_ops("recall", self.charge(account_id).plan)
        # A query not in the cache is embedded inside the pipeline, beside its keyword search.
        cached = self._queries.get((account_id, query))
        found = run_recall(
            current_view(self.store, account_id, sessions, when, every),
            cached if cached is not None else lambda: self._query_vector(account_id, query),
            RecallQuery(
                account_id,
                query,
                sessions,
                limit,
                threshold,
                where,
                self.clock(),
                collapse,
                explain,
            ),
        )
        self.hits.add(account_id, [m.id for m in found])
        return found

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
    def invalidate(self, account_id: str, memory_id: str, *, charge: bool = True) -> Memory:
        """Mark a memory no longer current (superseded by nothing), now; idempotent: an
        already superseded memory keeps its first ``superseded_at``."""
        memory_id = check.memory_id(memory_id)
        now = self.clock()
        row = self.store.get(account_id, memory_id, now)
        if row is None:
            raise NotFoundError(f"no memory {memory_id!r} in this account")
        if charge:
            self.charge(account_id)
        if row.superseded_at is None:
            self.store.set_superseded(account_id, [memory_id], now, None)
        return self.get(account_id, memory_id)

    def stats(self, account_id: str, session: str | None = None) -> Stats:
        """Hygiene figures of the account, or of one session (docs/memory-over-time.md)."""
        name = None if session is None else check.session(session)
        self.hits.flush()
        return account_stats(self.store, account_id, name, self.clock())

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
        results = self._store_rows(account_id, live, None if vectors is None else vectors[keep])
        self._restore_supersession(account_id, [rows[i] for i in keep], results)
        return results

    def _restore_supersession(
        self, account_id: str, rows: list[MemoryRow], results: list[RememberResult]
    ) -> None:
        """Mark imported memories superseded as their file says (also one already stored,
        so a re-run import completes an interrupted one); ``superseded_by`` names a memory
        of the file (its exported id), mapped to that memory's id here."""
        new_ids = {r.id: res.memory.id for r, res in zip(rows, results, strict=True) if r.id}
        for row, result in zip(rows, results, strict=True):
            if row.superseded_at is not None:
                by = new_ids.get(row.superseded_by or "")
                self.store.set_superseded(account_id, [result.memory.id], row.superseded_at, by)

    # last: a method named "list" would shadow the builtin in the annotations below it
    def list(
        self,
        account_id: str,
        session: check.SessionsArg = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        include_superseded: bool = False,
        as_of: Any = None,
    ) -> MemoryPage:
        """Memories newest first, a page at a time (current ones, as recall)."""
        sessions = check.sessions(session)
        limit = check.limit(limit, MAX_LIST_LIMIT)
        every, when = _over_time(include_superseded, as_of)
        codec = self._cursor_codec()
        before = codec.decode(account_id, cursor)
        view = current_view(self.store, account_id, sessions, when, every)
        rows = view.list_memories(account_id, sessions, limit + 1, before, self.clock())
        more = len(rows) > limit
        rows = rows[:limit]
        return MemoryPage(
            memories=[to_memory(r) for r in rows],
            next_cursor=codec.encode(account_id, rows[-1].seq) if more else None,
        )


def _over_time(include_superseded: Any, as_of: Any) -> tuple[bool, float | None]:
    """(every memory?, the time at which to judge what is current) of a recall or list."""
    if not isinstance(include_superseded, bool):
        raise ValidationError("include_superseded must be true or false")
    when = check.as_of(as_of)
    if include_superseded and when is not None:
        raise ValidationError("give include_superseded or as_of, not both")
    # Times are shown to the microsecond: a memory's own created_at, given back as as_of,
    # must include it, so as_of covers the whole microsecond it names.
    return include_superseded, None if when is None else when + MICROSECOND
