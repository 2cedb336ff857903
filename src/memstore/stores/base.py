"""The Store protocol: everything the engine needs from a database, and nothing more.

Stores know rows, vectors and SQL; the engine owns validation, dedup policy, ranking and
quotas. A store raises ``DuplicateError`` (never a driver's own error) when a unique key
is taken. Every method takes the account id first, and no method may return a row of
another account. The shared session is stored as the empty string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from memstore.stores.hygiene import SessionCounts
    from memstore.stores.idempotency import IdempotentAnswer
    from memstore.stores.stats import AccountActivity, StoreSize


@dataclass(frozen=True)
class MemoryRow:
    id: str
    account_id: str
    session: str
    content: str
    content_hash: str
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    expires_at: float | None = None
    seq: int = 0
    superseded_at: float | None = None  # no longer current since (docs/memory-over-time.md)
    superseded_by: str | None = None


@dataclass(frozen=True)
class AccountRow:
    id: str
    name: str
    plan: str
    created_at: float


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    account_id: str
    prefix: str
    key_hash: str
    created_at: float
    revoked_at: float | None = None
    admin: bool = False  # may manage the install's keys (the console's Keys page)
    last_used_at: float | None = None  # refreshed at most once a minute


Filters = dict[str, str | int | float | bool | None]


@dataclass(frozen=True)
class FollowUp:
    """A dense search whose query is made from the vectors of the first query's ``top``
    best hits (recall's local list): ``query`` takes them, best first by id, and returns
    that query (None: no search). ``dense_search_many`` may guess those hits, score the
    follow-up in the same pass, and keep its answer for the ``dense_search`` that asks for
    that exact vector, when the guess proves right."""

    top: int
    query: Callable[[Mapping[str, np.ndarray]], np.ndarray | None]


class StoreError(Exception):
    """Base of the errors a store raises on purpose (drivers' own errors are wrapped)."""


class DuplicateError(StoreError):
    """A row with that unique key (account name, key hash, memory content in its session)
    already exists."""


def context_offsets(
    rows: Iterable[tuple[str, str, int, float]], window: float
) -> dict[str, dict[int, str]]:
    """Turn (id, neighbour id, seq difference, created_at difference) rows into
    id -> {offset: neighbour id}: offsets -1, -2... before and 1, 2... after, nearest first,
    each side stopping at the first neighbour created more than ``window`` seconds away."""
    sides: dict[tuple[str, int], list[tuple[int, str, float]]] = {}
    for memory_id, neighbour, seq_delta, time_delta in rows:
        side = 1 if seq_delta > 0 else -1
        sides.setdefault((memory_id, side), []).append((abs(seq_delta), neighbour, time_delta))
    out: dict[str, dict[int, str]] = {}
    for (memory_id, side), found in sides.items():
        for step, (_, neighbour, time_delta) in enumerate(sorted(found), start=1):
            if abs(time_delta) > window:
                break
            out.setdefault(memory_id, {})[side * step] = neighbour
    return out


class Store(Protocol):
    # -- store identity
    def embedder_info(self) -> tuple[str, int] | None: ...
    def set_embedder_info(self, name: str, dim: int) -> None: ...
    def install_secret(self, name: str, candidate: str) -> str:
        """The install's secret called ``name``: ``candidate`` if none was stored yet."""
        ...

    # -- accounts, keys, usage
    def create_account(self, account_id: str, name: str, plan: str, now: float) -> AccountRow:
        """DuplicateError if the id or the name is taken."""
        ...

    def get_account(self, account_id: str) -> AccountRow | None: ...
    def find_account_by_name(self, name: str) -> AccountRow | None: ...
    def list_accounts(self) -> list[AccountRow]: ...
    def create_key(self, key: ApiKeyRow) -> None: ...
    def find_key(self, key_hash: str) -> ApiKeyRow | None: ...
    def list_keys(self) -> list[ApiKeyRow]: ...
    def revoke_key(self, key_id_or_prefix: str, now: float) -> bool: ...
    def touch_key(self, key_id: str, now: float) -> None:
        """Record that the key was just used (``last_used_at``)."""
        ...

    def add_usage(self, account_id: str, period: str, ops: int, limit: int | None) -> int | None:
        """Atomically add ``ops``; return the new total, or None (adding nothing) past ``limit``."""
        ...

    def get_usage(self, account_id: str, period: str) -> int: ...
    def usage_days(self, account_id: str, period: str) -> list[tuple[str, int]]:
        """(UTC day 'YYYY-MM-DD', ops) of the period 'YYYY-MM', days with no ops left out."""
        ...

    # -- answers to writes sent with an Idempotency-Key (memstore.stores.idempotency)
    def claim_request(
        self, account_id: str, key: str, fingerprint: str, now: float, free_before: float
    ) -> bool: ...
    def answer_request(self, account_id: str, key: str, status: int, body: str) -> None: ...
    def release_request(self, account_id: str, key: str) -> None: ...
    def find_request(self, account_id: str, key: str) -> IdempotentAnswer | None: ...
    def purge_requests(self, before: float) -> int: ...

    # -- memories
    def find_duplicates(
        self, account_id: str, keys: list[tuple[str, str]], now: float
    ) -> dict[tuple[str, str], MemoryRow]:
        """Live memories matching (session, content_hash) pairs."""
        ...

    def insert(self, rows: list[MemoryRow], vectors: np.ndarray) -> list[tuple[MemoryRow, bool]]:
        """Insert in one transaction; a row whose (account, session, hash) exists comes back
        as the existing row with ``True`` (deduplicated)."""
        ...

    def get(self, account_id: str, memory_id: str, now: float) -> MemoryRow | None: ...
    def get_many(self, account_id: str, ids: list[str], now: float) -> dict[str, MemoryRow]: ...
    def list_memories(
        self,
        account_id: str,
        sessions: list[str] | None,
        limit: int,
        before_seq: int | None,
        now: float,
    ) -> list[MemoryRow]:
        """Newest first; ``sessions=None`` means every session."""
        ...

    def vectors(self, account_id: str, ids: list[str]) -> dict[str, np.ndarray]: ...
    def neighbors(
        self,
        account_id: str,
        ids: list[str],
        radius: int,
        window: float,
        now: float,
        filters: Filters | None,
    ) -> dict[str, dict[int, str]]:
        """The live memories stored just before and after each of ``ids`` in its session
        (insertion order), up to ``radius`` each side, matching ``filters``, created within
        ``window`` seconds of it: id -> {offset: id}, offsets -radius..-1 and 1..radius."""
        ...

    def update(self, row: MemoryRow, vector: np.ndarray | None) -> bool:
        """Replace content/metadata/updated_at of ``row.id`` in ``row.account_id``;
        DuplicateError if another memory of its session has that content."""
        ...

    def delete(self, account_id: str, memory_id: str) -> bool: ...
    def delete_session(self, account_id: str, session: str) -> int: ...
    def sessions(self, account_id: str, now: float) -> list[tuple[str, int, float]]:
        """(session, live memories, last write time), by session name."""
        ...

    def dense_search(
        self,
        account_id: str,
        sessions: list[str] | None,
        vector: np.ndarray,
        k: int,
        now: float,
        filters: Filters | None,
    ) -> list[tuple[str, float]]:
        """(id, cosine similarity), best first, exact within the given sessions."""
        ...

    def dense_search_many(
        self,
        account_id: str,
        sessions: list[str] | None,
        vectors: list[np.ndarray],
        k: int,
        now: float,
        filters: Filters | None,
        shift: np.ndarray | None = None,
        follow: FollowUp | None = None,
    ) -> list[list[tuple[str, float]]]:
        """``dense_search`` of each of ``vectors`` (same answers), in one pass over the scope
        where the store can (recall's plain and centred queries). ``shift``: a hint that
        ``vectors`` are [q, normalise(q - shift)], which a store may use to shortlist the
        second from the first's scores (the answers stay exact whatever it is). ``follow``:
        a search recall will ask for next (``FollowUp``); a store may ignore it."""
        ...

    def session_mean(
        self,
        account_id: str,
        sessions: list[str] | None,
        now: float,
        max_rows: int | None = None,
    ) -> np.ndarray | None:
        """The mean stored vector of the account's memories in ``sessions`` (all when None),
        None when they hold none, or more than ``max_rows``: recall centres its query with
        it (ranking.centred_query).
        Kept as running sums updated with every write, so it costs no scan. Approximate
        on purpose, which a centring vector allows: memories that expired but are not purged
        yet count (a store may leave ``now`` unused), superseded ones too, and metadata
        filters are not applied (the mean of the sessions searched)."""
        ...

    def keyword_search(
        self,
        account_id: str,
        sessions: list[str] | None,
        terms: list[str],
        k: int,
        now: float,
        filters: Filters | None,
    ) -> list[tuple[str, float]]:
        """(id, relevance > 0), best first, for memories containing any of ``terms``."""
        ...

    def purge_expired(self, account_id: str, now: float, session: str | None = None) -> int:
        """Delete the account's (or only one session's) memories expired at ``now``."""
        ...

    def check(self) -> None:
        """Raise if the database cannot serve (used by /readyz)."""
        ...

    # -- memory over time (stores/supersession.py, stores/hygiene.py)
    def set_superseded(
        self, account_id: str, ids: list[str], at: float | None, by: str | None
    ) -> list[str]:
        """Mark current memories superseded (``at=None``: current again); the ids changed."""
        ...

    def not_current(
        self, account_id: str, sessions: list[str] | None, as_of: float | None
    ) -> set[str]:
        """Ids not current at ``as_of`` (None: now): superseded by then, or created later."""
        ...

    def add_recall_hits(self, hits: dict[tuple[str, str], int], now: float) -> None: ...
    def session_counts(
        self, account_id: str, session: str | None, now: float
    ) -> list[SessionCounts]: ...

    # -- install-wide figures for operators (stores/stats.py): counts and times only
    def database_bytes(self) -> int: ...
    def size_stats(self) -> StoreSize: ...
    def account_activity(self, period: str, now: float) -> list[AccountActivity]: ...

    def close(self) -> None: ...
