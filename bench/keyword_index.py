"""The SQLite keyword index against the FTS5 query: identical answers, and their cost.

Stores --memories LoCoMo turns (ranking_latency.py's corpus, one session, random vectors),
then runs --queries LoCoMo questions' keyword terms (top 100, as recall asks) through both
paths of one store file: FTS5 (the index turned off) and the in-memory BM25 index. Prints
how many answers are identical (ids, order and scores), the build time and memory of the
index, and the p50 of each path (first pass: statistics read; second: cached).

    .venv/bin/python bench/keyword_index.py --data /work/shared/data/locomo-dev.json
    .venv/bin/python bench/keyword_index.py --data ... --memories 100000 --queries 300
"""

from __future__ import annotations

import argparse
import gc
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ranking_latency import texts_and_questions  # noqa: E402

from memstore.models import content_hash  # noqa: E402
from memstore.ranking import keyword_terms  # noqa: E402
from memstore.stores.base import MemoryRow  # noqa: E402
from memstore.stores.sqlite import SQLiteStore  # noqa: E402

ACCOUNT, SESSION, K = "bench", "latency", 100


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--memories", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    texts, questions = texts_and_questions(args.data, args.memories)
    queries = [keyword_terms(q) for q in questions[: args.queries]]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memstore.db"
        fts = SQLiteStore(path, keyword_index_max_rows=0)
        fts.set_embedder_info("bench", 8)
        for start in range(0, len(texts), 2000):
            chunk = texts[start : start + 2000]
            rows = [
                MemoryRow(f"mem_{start + i}", ACCOUNT, SESSION, t, content_hash(t), {}, 1.0, 1.0)
                for i, t in enumerate(chunk)
            ]
            fts.insert(rows, rng.standard_normal((len(chunk), 8)).astype(np.float32))
        indexed = SQLiteStore(path, keyword_index_max_rows=args.memories + 1)
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        indexed.keyword_search(ACCOUNT, [SESSION], ["warm"], K, 0.0, None)
        build = time.perf_counter() - t0
        gc.collect()
        grown = rss_mb() - before
        identical = answered = 0
        times: dict[str, list[float]] = {}
        for run in ("first", "second"):
            for terms in queries:
                t0 = time.perf_counter()
                want = fts.keyword_search(ACCOUNT, [SESSION], terms, K, 0.0, None)
                t1 = time.perf_counter()
                got = indexed.indexed_keyword_search(ACCOUNT, [SESSION], terms, K, 0.0)
                t2 = time.perf_counter()
                times.setdefault(f"fts5 {run}", []).append(t1 - t0)
                times.setdefault(f"index {run}", []).append(t2 - t1)
                if run == "first":
                    answered += got is not None
                    identical += got == want
        fts.close()
        indexed.close()
    p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"{args.memories:,} memories, {len(queries)} LoCoMo questions, top {K}")
    print(
        f"identical to FTS5 (ids, order, scores): {identical}/{len(queries)};"
        f" answered by the index: {answered}"
    )
    print(f"index build {build:.2f} s, RSS +{grown:.0f} MB")
    for run in ("first", "second"):
        print(
            f"p50 {run:<6} pass: FTS5 {p50[f'fts5 {run}']:7.2f} ms,"
            f" index {p50[f'index {run}']:6.2f} ms"
            f" ({p50[f'fts5 {run}'] / p50[f'index {run}']:.1f}x)"
        )
    with open("/proc/loadavg") as f:
        print(f"load {' '.join(f.read().split()[:3])}")
    print(f"reproduce: .venv/bin/python bench/keyword_index.py {shlex.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
