"""What is current: recall and list see a store without the memories that were not current
(superseded, or at ``as_of`` also created later), exactly. See docs/memory-over-time.md."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from memstore.stores.base import Filters, FollowUp, MemoryRow, Store

NEIGHBOUR_SLACK = 8  # extra neighbours asked for per side, to step over hidden ones


class CurrentView:
    """``store`` without the ids in ``hidden``. Ranked lists ask the store for
    ``len(hidden)`` more rows than wanted, so the top k of what is left is the true top k;
    the cost grows with the superseded memories in scope, never with other accounts'."""

    def __init__(self, store: Store, hidden: set[str]) -> None:
        self.store = store
        self.hidden = hidden

    def __getattr__(self, name: str) -> Any:  # every other Store method, unchanged
        return getattr(self.store, name)

    def _ranked(self, found: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
        return [(mid, s) for mid, s in found if mid not in self.hidden][:k]

    def dense_search(
        self,
        account_id: str,
        sessions: list[str] | None,
        vector: np.ndarray,
        k: int,
        now: float,
        filters: Filters | None,
    ) -> list[tuple[str, float]]:
        more = k + len(self.hidden)
        return self._ranked(
            self.store.dense_search(account_id, sessions, vector, more, now, filters), k
        )

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
        more = k + len(self.hidden)
        found = self.store.dense_search_many(
            account_id, sessions, vectors, more, now, filters, shift, follow
        )
        return [self._ranked(one, k) for one in found]

    def keyword_search(
        self,
        account_id: str,
        sessions: list[str] | None,
        terms: list[str],
        k: int,
        now: float,
        filters: Filters | None,
    ) -> list[tuple[str, float]]:
        more = k + len(self.hidden)
        return self._ranked(
            self.store.keyword_search(account_id, sessions, terms, more, now, filters), k
        )

    def neighbors(
        self,
        account_id: str,
        ids: list[str],
        radius: int,
        window: float,
        now: float,
        filters: Filters | None,
    ) -> dict[str, dict[int, str]]:
        """Neighbours among current memories: hidden ones are stepped over (up to
        NEIGHBOUR_SLACK of them per side) and the offsets renumbered."""
        wide = radius + min(len(self.hidden), NEIGHBOUR_SLACK)
        out: dict[str, dict[int, str]] = {}
        for mid, offsets in self.store.neighbors(
            account_id, ids, wide, window, now, filters
        ).items():
            kept: dict[int, str] = {}
            for side in (1, -1):
                steps = sorted(o for o in offsets if o * side > 0)
                shown = [offsets[o] for o in steps if offsets[o] not in self.hidden]
                kept.update({side * (i + 1): n for i, n in enumerate(shown[:radius])})
            if kept:
                out[mid] = kept
        return out

    def get_many(self, account_id: str, ids: list[str], now: float) -> dict[str, MemoryRow]:
        shown = [mid for mid in ids if mid not in self.hidden]
        return self.store.get_many(account_id, shown, now)

    def list_memories(
        self,
        account_id: str,
        sessions: list[str] | None,
        limit: int,
        before_seq: int | None,
        now: float,
    ) -> list[MemoryRow]:
        rows = self.store.list_memories(
            account_id, sessions, limit + len(self.hidden), before_seq, now
        )
        return [r for r in rows if r.id not in self.hidden][:limit]


def current_view(
    store: Store, account_id: str, sessions: list[str] | None, as_of: float | None, every: bool
) -> Store:
    """The store as recall and list see it: every memory (``every``), those current at
    ``as_of``, or (default) those current now."""
    if every:
        return store
    hidden = store.not_current(account_id, sessions, as_of)
    return cast(Store, CurrentView(store, hidden)) if hidden else store
