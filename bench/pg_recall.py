"""Recall latency and recall@k of PostgresStore.dense_search at several selectivities.

Loads N synthetic memories (clustered unit vectors, no model) into one account across
sessions holding 1%, 10% and the rest of the rows, then for each scope (1%, 10%, 100% =
every session) times dense_search as the store plans it and with the HNSW path forced,
and scores both against exact ground truth.

    python bench/pg_recall.py                       # 100k rows in a throwaway pgserver
    python bench/pg_recall.py --n 1000000 --database-url postgresql://...

--database-url must name a database of its own: the benchmark truncates its memories.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from memstore.stores.postgres import HNSW_INDEX, PostgresStore

ACCOUNT = "bench"
NOW = 1_700_000_000.0
SCOPES = {"1%": ["s1"], "10%": ["s10"], "100%": None}


def start_pgserver() -> tuple[str, object, Path]:
    base = Path(tempfile.mkdtemp(prefix="memstore-bench-pg-"))
    runtime = Path(tempfile.gettempdir()) / f"memstore-xdg-{os.geteuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # pgserver's lock dir, read at import
    import pgserver

    server = pgserver.get_server(base / "pgdata", cleanup_mode="delete")
    return server.get_uri(), server, base


class Vectors:
    """A cheap stand-in for text embeddings: unit vectors around random topic centres."""

    def __init__(self, dim: int, topics: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        c = self.rng.standard_normal((topics, dim)).astype(np.float32)
        self.centres = c / np.linalg.norm(c, axis=1, keepdims=True)

    def draw(self, n: int, spread: float = 0.08) -> np.ndarray:
        picks = self.centres[self.rng.integers(0, len(self.centres), n)]
        noise = self.rng.standard_normal(picks.shape).astype(np.float32) * spread
        v = picks + noise
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def session_of(i: int, n: int) -> str:
    """Rows 0..1% are s1, the next 10% s10, the rest bulk."""
    if i < n // 100:
        return "s1"
    return "s10" if i < n // 100 + n // 10 else "bulk"


def load(url: str, n: int, dim: int, gen: Vectors, chunk: int = 20_000) -> dict[str, float]:
    """COPY n rows in binary with the HNSW index dropped, then build it; return timings."""
    timings = {}
    with psycopg.connect(url) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        conn.execute("TRUNCATE memories")
        t0 = time.perf_counter()
        cols = "id, account_id, session, content, content_hash, metadata, embedding,"
        cols += " created_at, updated_at"
        with conn.cursor().copy(f"COPY memories ({cols}) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.set_types(
                ["text", "text", "text", "text", "text", "jsonb", "vector", "float8", "float8"]
            )
            for start in range(0, n, chunk):
                vecs = gen.draw(min(chunk, n - start))
                for j, vec in enumerate(vecs):
                    i = start + j
                    cp.write_row(
                        (f"m{i}", ACCOUNT, session_of(i, n), f"memory {i}", f"h{i}", "{}", vec)
                        + (NOW, NOW)
                    )
        conn.commit()
        timings["copy_s"] = time.perf_counter() - t0
        conn.execute("SET maintenance_work_mem = '512MB'")
        t0 = time.perf_counter()
        conn.execute(
            f"CREATE INDEX {HNSW_INDEX} ON memories USING hnsw (embedding vector_cosine_ops)"
        )
        conn.commit()
        timings["hnsw_build_s"] = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE memories")
    return timings


def measure(store: PostgresStore, truth: dict, queries: np.ndarray, k: int) -> dict:
    out = {}
    for label, sessions in SCOPES.items():
        for q in queries[:5]:  # warm the caches this plan reads
            store.dense_search(ACCOUNT, sessions, q, k, NOW, None)
        lat, hits = [], 0
        for qi, q in enumerate(queries):
            t0 = time.perf_counter()
            found = store.dense_search(ACCOUNT, sessions, q, k, NOW, None)
            lat.append((time.perf_counter() - t0) * 1000)
            hits += len({m for m, _ in found} & truth[label][qi])
        out[label] = {
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2),
            f"recall@{k}": round(hits / (k * len(queries)), 4),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--exact-limit", type=int, default=None, help="the store plan's switch")
    ap.add_argument("--ef-search", type=int, default=None, help="for the forced HNSW path")
    ap.add_argument("--database-url", default=os.environ.get("MEMSTORE_BENCH_DATABASE_URL"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    args = ap.parse_args()

    server = base = None
    url = args.database_url
    if not url:
        url, server, base = start_pgserver()
    try:
        plan_kw = {} if args.exact_limit is None else {"exact_limit": args.exact_limit}
        store = PostgresStore(url, pool_size=2, **plan_kw)
        if store.embedder_info() is None:
            store.set_embedder_info(f"synthetic-{args.dim}", args.dim)
        gen = Vectors(args.dim, args.topics, args.seed)
        print(f"loading {args.n:,} rows ...", file=sys.stderr, flush=True)
        timings = load(url, args.n, args.dim, gen)
        queries = gen.draw(args.queries)

        exact = PostgresStore(url, exact_limit=2**62, pool_size=1)
        truth = {
            label: [
                {m for m, _ in exact.dense_search(ACCOUNT, s, q, args.k, NOW, None)}
                for q in queries
            ]
            for label, s in SCOPES.items()
        }
        hnsw_kw = {} if args.ef_search is None else {"ef_search": args.ef_search}
        forced = PostgresStore(url, exact_limit=0, pool_size=1, **hnsw_kw)
        results = {
            "store plan": measure(store, truth, queries, args.k),
            "exact": measure(exact, truth, queries, args.k),
            f"hnsw forced (ef_search={forced.ef_search})": measure(forced, truth, queries, args.k),
        }
        for s in (store, exact, forced):
            s.close()
    finally:
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
            shutil.rmtree(base, ignore_errors=True)  # type: ignore[arg-type]

    print(f"rows {args.n:,}  dim {args.dim}  queries {args.queries}  k {args.k}")
    print(f"COPY {timings['copy_s']:.1f} s   HNSW build {timings['hnsw_build_s']:.1f} s")
    print(f"store plan: exact while the scope has <= {store.exact_limit:,} rows, else HNSW")
    for plan, per_scope in results.items():
        for scope, r in per_scope.items():
            print(
                f"  {plan:32s} {scope:>5s}  p50 {r['p50_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms"
                f"  recall@{args.k} {r[f'recall@{args.k}']:.3f}"
            )
    argv = [a for a in sys.argv[1:] if a != "--json"]
    print("reproduce: python bench/pg_recall.py " + shlex.join(argv))
    if args.json:
        print(json.dumps({"n": args.n, "dim": args.dim, **timings, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
