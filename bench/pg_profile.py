"""Where a cached recall's time goes on PostgreSQL: per store call, and statements sent.

Fills a throwaway pgserver as ``bench/latency.py --postgres`` does (one account with every
memory in the searched session, one with 1% there, in one table), then times cached recalls
of the one-session account, wrapping each store method (the keyword search runs beside
the dense search, on its own thread) and counting psycopg statements per thread.

    .venv/bin/python bench/pg_profile.py --n 10000
    PYTHONPATH=/work/main/src .venv/bin/python bench/pg_profile.py --n 10000   # another tree
"""

from __future__ import annotations

import argparse
import collections
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import bench_corpus, corpus_options  # noqa: E402
from latency_pg import SCOPES, SEARCHED, fill  # noqa: E402
from pg_recall import start_pgserver  # noqa: E402

import memstore  # noqa: E402
from memstore.engine import MemoryEngine  # noqa: E402
from memstore.stores.postgres import PostgresStore  # noqa: E402

CALLS = (
    "dense_search_many",
    "dense_search",
    "keyword_search",
    "vectors",
    "neighbors",
    "get_many",
    "session_mean",
    "not_current",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="memories in each account")
    ap.add_argument("--queries", type=int, default=60)
    corpus_options(ap)
    args = ap.parse_args()
    embedder, corpus, queries = bench_corpus(args.data, args.queries, args.cache_dir)
    url, server, _ = start_pgserver()  # kept referenced: it stops when freed
    store = PostgresStore(url)
    engine = MemoryEngine(store, embedder)
    for account in SCOPES.values():
        engine.ensure_account(account)
        fill(store, account, corpus, 0, args.n)
    account = SCOPES["one"]
    for q, v in zip(queries, [embedder.embed_query(q) for q in queries], strict=True):
        engine._queries.put((account, q), v)  # cached query vectors

    times: dict[str, list[float]] = collections.defaultdict(list)
    sent: collections.Counter[str] = collections.Counter()
    execute = psycopg.Connection.execute

    def counting(self: Any, query: Any, *a: Any, **k: Any) -> Any:
        sent[threading.current_thread().name.split("_")[0]] += 1
        return execute(self, query, *a, **k)

    psycopg.Connection.execute = counting  # type: ignore[method-assign]
    for name in CALLS:
        method = getattr(store, name)

        def timed(*a: Any, _method: Any = method, _name: str = name, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return _method(*a, **k)
            finally:
                times[_name].append((time.perf_counter() - start) * 1000)

        setattr(store, name, timed)

    def recall(q: str) -> Any:
        return engine.recall(account, q, session=SEARCHED, limit=10, charge=False)

    for q in queries:  # warm up the caches
        recall(q)
    times.clear()
    sent.clear()
    walls = []
    for q in queries:
        start = time.perf_counter()
        recall(q)
        walls.append((time.perf_counter() - start) * 1000)
    n = len(walls)
    print(f"memstore {Path(memstore.__file__).parent}")
    print(
        f"{args.n:,} memories in one session (and {args.n:,} in the 1% account), {n} cached"
        f" recalls: wall p50 {np.percentile(walls, 50):.1f} ms, mean {np.mean(walls):.1f} ms;"
        f" load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("| store call | calls/recall | ms/recall | p50/call |\n|---|---:|---:|---:|")
    for name, spent in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {name} | {len(spent) / n:.2f} | {sum(spent) / n:.2f} | {np.median(spent):.2f} |")
    print("statements per recall:", {t: round(c / n, 2) for t, c in sent.items()})
    print("reproduce: .venv/bin/python bench/pg_profile.py " + shlex.join(sys.argv[1:]))
    store.close()
    del server


if __name__ == "__main__":
    main()
