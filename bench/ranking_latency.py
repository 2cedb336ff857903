"""Recall latency at N memories: the default hybrid recall against plain dense recall.

    python bench/ranking_latency.py --data ../shared/data/locomo-dev.json [--memories 10000]
    python bench/ranking_latency.py --data ... --postgres       # a throwaway pgserver
    python bench/ranking_latency.py --data ... --database-url postgresql://...  # its own DB

Memories are LoCoMo turns (repeated with a counter to reach N) in one session, imported
with random unit vectors so that setup does not spend minutes embedding: search cost
does not depend on the vectors' values. Queries are LoCoMo questions. "Plain dense" is
what recall did with one list: embed, exact cosine top-k, fetch the rows. Both are timed
with the query vector cached (the engine's LRU) and the embedding's own cost reported
separately, so the ratio shown is the worst case for hybrid. The "cold" line times what a
new query costs: embedded inside recall, where the keyword search runs beside the
embedding, against embedding and searching one after the other.

From 20k memories on SQLite, dense search shortlists with int8 codes (the ``fast`` extra)
and scores exactly; ``MEMSTORE_VECTOR_CODES_MIN_ROWS=0`` times the float32 scan instead.
Random unit vectors are the worst case for the codes' error bound.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from memstore import recall as memstore_recall
from memstore.embedding import load_embedder
from memstore.engine import MemoryEngine
from memstore.models import content_hash
from memstore.stores.base import MemoryRow, Store

SESSION = "latency"
LIMIT = 5

BENCH_ACCOUNT = "bench"


def texts_and_questions(data: Path, n: int) -> tuple[list[str], list[str]]:
    samples = json.loads(data.read_text())
    turns = [
        f"{t['speaker']}: {t.get('text', '')}"
        for s in samples
        for key, value in s["conversation"].items()
        if key.startswith("session_") and isinstance(value, list)
        for t in value
    ]
    questions = [qa["question"] for s in samples for qa in s["qa"]]
    return [f"{turns[i % len(turns)]} ({i})" for i in range(n)], questions


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def open_store(args: argparse.Namespace, tmp: Path) -> Store:
    """SQLite in ``tmp`` by default; PostgreSQL with --postgres or --database-url."""
    if args.postgres or args.database_url:
        from memstore.stores.postgres import PostgresStore

        url = args.database_url
        if url is None:
            from pg_recall import start_pgserver

            url, args.pgserver, _ = start_pgserver()  # kept referenced: it stops when freed
        return PostgresStore(url)
    from memstore.stores.sqlite import SQLiteStore

    return SQLiteStore.open_dir(tmp)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--postgres", action="store_true", help="on a throwaway pgserver")
    parser.add_argument("--database-url", help="on this PostgreSQL database (must be empty)")
    parser.add_argument(
        "--no-centred", action="store_true", help="recall without the two centred lists"
    )
    args = parser.parse_args(argv)
    if args.no_centred:  # what the centred dense list costs (docs/ranking.md)
        memstore_recall.CENTRED_WEIGHT = memstore_recall.LOCAL_WEIGHT = 0.0
    texts, questions = texts_and_questions(args.data, args.memories)
    questions = questions[: args.queries]
    rng = np.random.default_rng(0)
    embedder = load_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(args, Path(tmp))
        engine = MemoryEngine(store, embedder)
        engine.ensure_account(BENCH_ACCOUNT)
        for start in range(0, len(texts), 1000):
            chunk = texts[start : start + 1000]
            rows = [
                MemoryRow("", BENCH_ACCOUNT, SESSION, t, content_hash(t), {}, 0.0, 0.0)
                for t in chunk
            ]
            vectors = rng.standard_normal((len(chunk), embedder.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            engine.import_rows(BENCH_ACCOUNT, rows, vectors)

        embed = []
        cached: dict[str, np.ndarray] = {}  # the embedder keeps no cache; the engine does
        for q in questions:
            t0 = time.perf_counter()
            cached[q] = embedder.embed_query(q)
            embed.append(time.perf_counter() - t0)
            engine.recall(BENCH_ACCOUNT, q, session=SESSION, limit=LIMIT, charge=False)

        def dense_recall(q: str) -> None:
            now = time.time()
            hits = store.dense_search(BENCH_ACCOUNT, [SESSION], cached[q], LIMIT, now, None)
            store.get_many(BENCH_ACCOUNT, [mid for mid, _ in hits], now)

        def hybrid_recall(q: str) -> None:
            engine.recall(BENCH_ACCOUNT, q, session=SESSION, limit=LIMIT, charge=False)

        def dense_cold(q: str) -> None:
            now = time.time()
            vector = embedder.embed_query(q)
            hits = store.dense_search(BENCH_ACCOUNT, [SESSION], vector, LIMIT, now, None)
            store.get_many(BENCH_ACCOUNT, [mid for mid, _ in hits], now)

        def hybrid_cold(q: str) -> None:
            engine.recall(BENCH_ACCOUNT, q, session=SESSION, limit=LIMIT, charge=False)

        def forget_query(q: str) -> None:  # untimed: the cold run embeds inside recall
            engine._queries.clear()
            for other, vector in cached.items():
                if other != q:
                    engine._queries.put((BENCH_ACCOUNT, other), vector)

        runs = (
            ("dense", dense_recall),
            ("hybrid", hybrid_recall),
            ("dense cold", dense_cold),
            ("hybrid cold", hybrid_cold),
        )
        timings: dict[str, list[float]] = {name: [] for name, _ in runs}
        for _ in range(2):  # interleaved, so load from other processes hits all alike
            for q in questions:
                for name, run in runs:
                    if name == "hybrid cold":
                        forget_query(q)
                    t0 = time.perf_counter()
                    run(q)
                    timings[name].append(time.perf_counter() - t0)
        codes = _coded(store)
        if codes == "on":
            codes += codes_against_scan(store, [cached[q] for q in questions])
        store.close()

    dense, hybrid, emb = p50_ms(timings["dense"]), p50_ms(timings["hybrid"]), p50_ms(embed)
    backend = "PostgreSQL" if args.postgres or args.database_url else "SQLite"
    print(f"{args.memories} memories ({backend}), {len(questions)} queries x 2, limit {LIMIT}")
    print(f"query embedding p50      {emb:8.2f} ms")
    print(f"plain dense recall p50   {dense:8.2f} ms (+ embedding {dense + emb:8.2f} ms)")
    print(f"hybrid recall p50        {hybrid:8.2f} ms (+ embedding {hybrid + emb:8.2f} ms)")
    print(
        f"ratio hybrid/dense       {hybrid / dense:8.2f}x (with embedding "
        f"{(hybrid + emb) / (dense + emb):.2f}x)"
    )
    cold, hybrid_cold = p50_ms(timings["dense cold"]), p50_ms(timings["hybrid cold"])
    print(f"cold (embedded inside)   dense {cold:8.2f} ms, hybrid {hybrid_cold:8.2f} ms: ", end="")
    print(f"{hybrid_cold / cold:.2f}x")
    print(f"dense search int8 first pass: {codes}; RSS {_rss_mb():.0f} MB")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    argv_shown = " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"reproduce: python bench/ranking_latency.py {argv_shown}")


def codes_against_scan(store: Store, vectors: list[np.ndarray]) -> str:
    """Dense search (top 100) with the int8 first pass and with the float32 scan, interleaved
    query by query on one index, so that load hits both alike; the answers must be equal."""
    index = next(iter(store._indexes.values()))[0]  # type: ignore[attr-defined]
    codes, min_rows, times = index._codes, index.codes_min_rows, {"codes": [], "scan": []}
    now = time.time()
    try:
        for _ in range(2):
            for vector in vectors:
                found = {}
                for name in times:
                    index._codes = codes if name == "codes" else None
                    index.codes_min_rows = min_rows if name == "codes" else 0  # no rebuild
                    t0 = time.perf_counter()
                    found[name] = index.search(vector, 100, now, [SESSION])
                    times[name].append(time.perf_counter() - t0)
                assert found["codes"] == found["scan"], "the int8 first pass changed an answer"
    finally:
        index._codes, index.codes_min_rows = codes, min_rows
    on, off = p50_ms(times["codes"]), p50_ms(times["scan"])
    return (
        f" (index search, top 100: {on:.2f} ms vs float32 scan {off:.2f} ms, {off / on:.2f}x;"
        f" {len(vectors) * 2} answers identical)"
    )


def _coded(store: Store) -> str:
    """Whether the SQLite vector index used its int8 codes (vector_codes.py)."""
    indexes = getattr(store, "_indexes", None)
    if not indexes:
        return "n/a"
    index = next(iter(indexes.values()))[0]
    return "on" if getattr(index, "_codes", None) is not None else "off"


def _rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
