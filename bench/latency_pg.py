"""``bench/latency.py --postgres``: the same corpus and queries through memstore's local
engine over PostgreSQL + pgvector (a throwaway ``pgserver``), in two scopes:

- one session: every memory in the session searched (as the SQLite rows of the table);
- 1% selectivity: the account holds the same memories, 1% of them in the session searched.

Cold recall embeds each query (distinct queries, the query cache cleared first); cached
repeats them; dense search is the store's vector half alone, with its recall@10 against
exact search over the scope.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from memstore.engine import MemoryEngine
from memstore.models import content_hash, new_memory_id
from memstore.stores.base import MemoryRow

SCOPES = {"one": "pg-one", "1pct": "pg-pct"}  # scope (one session, 1% selectivity) -> account
SEARCHED = "bench"


def fill(store: Any, account: str, corpus: Any, start: int, stop: int) -> list[tuple[str, str]]:
    """Insert memories [start, stop) into ``account``; (id, session) of each, in order. In
    the 1% account, every 100th memory is in the searched session, the rest elsewhere."""
    out: list[tuple[str, str]] = []
    now = time.time()
    for lo, texts, vectors in corpus.chunks(start, stop, 2000):
        rows = []
        for i, text in enumerate(texts, start=lo):
            session = SEARCHED if account == "pg-one" or i % 100 == 0 else "elsewhere"
            rows.append(
                MemoryRow(
                    id=new_memory_id(),
                    account_id=account,
                    session=session,
                    content=text,
                    content_hash=content_hash(text),
                    created_at=now,
                    updated_at=now,
                )
            )
        for row, _ in store.insert(rows, vectors):
            out.append((row.id, row.session))
    # What autovacuum does within a minute of such a bulk insert: without fresh statistics
    # the planner takes the table for empty and picks nested loops (3x slower at 1k).
    with store._tx() as conn:
        conn.execute("ANALYZE memories")
    return out


class PostgresLevels:
    """One pgserver for a whole run, filled up size by size like the other stores."""

    def __init__(self, embedder: Any) -> None:
        from pg_recall import start_pgserver

        from memstore.stores.postgres import PostgresStore

        url, self._server, _ = start_pgserver()  # kept referenced: it stops when freed
        self.store = PostgresStore(url)
        self.engine = MemoryEngine(self.store, embedder)
        self.ids: dict[str, list[tuple[str, str]]] = {a: [] for a in SCOPES.values()}
        for account in SCOPES.values():
            self.engine.ensure_account(account)

    def measure(self, n: int, corpus: Any, queries: list[str], qvecs: np.ndarray) -> dict:
        from latency import K, pct, timed

        out: dict[str, Any] = {}
        for scope, account in SCOPES.items():
            t0 = time.perf_counter()
            self.ids[account] += fill(self.store, account, corpus, len(self.ids[account]), n)
            res: dict[str, Any] = {"fill_s": time.perf_counter() - t0}
            in_scope = [i for i, (_, s) in enumerate(self.ids[account]) if s == SEARCHED]
            matrix = np.concatenate([v for _, _, v in corpus.chunks(0, n, 50_000)])[in_scope]
            ids = [self.ids[account][i][0] for i in in_scope]
            self._recall(account, "warm up the caches")
            self.engine._queries.clear()
            for key in ("recall", "recall_cached"):
                res[key] = pct(
                    [timed(lambda q=q, a=account: self._recall(a, q))[0] for q in queries]
                )
            now, dense_ms, hits = time.time(), [], 0
            for v in qvecs:
                ms, found = timed(
                    lambda v=v, a=account, t=now: self.store.dense_search(
                        a, [SEARCHED], v, K, t, None
                    )
                )
                dense_ms.append(ms)
                exact = {ids[j] for j in np.argsort(-(matrix @ v))[:K]}
                hits += len(exact & {m for m, _ in found})
            res["search"] = pct(dense_ms)
            res["recall_at_10"] = hits / (K * len(qvecs))
            res["memories_in_scope"] = len(in_scope)
            out[scope] = res
        return out

    def _recall(self, account: str, query: str) -> Any:
        return self.engine.recall(account, query, session=SEARCHED, limit=10, charge=False)

    def close(self) -> None:
        self.store.close()
