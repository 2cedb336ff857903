"""Hygiene figures (``GET /v1/stats``) and the batched recall-hit counter behind
"never recalled". See docs/memory-over-time.md, "Hygiene figures"."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from memstore.current import current_view
from memstore.models import SessionStats, Stats
from memstore.similar import NEAR_DUPLICATE_COSINE, near_duplicate_groups
from memstore.stores.base import Store

HITS_FLUSH_SECONDS = 5.0
NEAR_DUP_PER_SESSION = 1000  # newest current memories of a session examined
NEAR_DUP_PER_ACCOUNT = 10_000  # and in all, per stats call

log = logging.getLogger("memstore.hygiene")


class RecallHits:
    """Counts the memories recall returns in memory and writes them at most every
    HITS_FLUSH_SECONDS (and on ``flush``): no write per recall. A crash loses at most the
    last few seconds of counts; they are statistics."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._pending: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._flushed_at = clock()

    def add(self, account_id: str, ids: Iterable[str]) -> None:
        with self._lock:
            self._pending.update((account_id, mid) for mid in ids)
            due = self.clock() - self._flushed_at >= HITS_FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the pending counts (kept for the next flush if the store refuses)."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._flushed_at = self.clock()
        if not pending:
            return
        try:
            self.store.add_recall_hits(dict(pending), self._flushed_at)
        except Exception:
            log.warning("recall hit counts not written; kept for the next flush", exc_info=True)
            with self._lock:
                self._pending.update(pending)


def account_stats(store: Store, account_id: str, session: str | None, now: float) -> Stats:
    """The account's figures, or one session's (``session`` given: "" is the shared one)."""
    per_session = store.session_counts(account_id, session, now)
    budget = NEAR_DUP_PER_ACCOUNT
    complete = True
    shown: list[SessionStats] = []
    for counts in per_session:
        current = counts.memories - counts.superseded
        examined = min(current, NEAR_DUP_PER_SESSION, budget)
        complete = complete and examined == current
        groups = _groups(store, account_id, counts.session, examined, now) if examined > 1 else 0
        budget -= examined
        shown.append(
            SessionStats(
                session=counts.session or None,
                memories=counts.memories,
                current=current,
                superseded=counts.superseded,
                expired_purged=counts.purged,
                never_recalled=counts.never_recalled,
                near_duplicate_groups=groups,
            )
        )
    return Stats(
        session=session or None,
        memories=sum(s.memories for s in shown),
        current=sum(s.current for s in shown),
        superseded=sum(s.superseded for s in shown),
        expired_purged=sum(s.expired_purged for s in shown),
        never_recalled=sum(s.never_recalled for s in shown),
        near_duplicate_groups=sum(s.near_duplicate_groups for s in shown),
        near_duplicate_cosine=NEAR_DUPLICATE_COSINE,
        near_duplicates_complete=complete,
        sessions=shown,
    )


def _groups(store: Store, account_id: str, session: str, limit: int, now: float) -> int:
    """Near-duplicate groups among the newest ``limit`` current memories of ``session``."""
    view = current_view(store, account_id, [session], None, False)
    rows = view.list_memories(account_id, [session], limit, None, now)
    found = store.vectors(account_id, [r.id for r in rows])
    if len(found) < 2:
        return 0
    return near_duplicate_groups(np.stack(list(found.values())))
